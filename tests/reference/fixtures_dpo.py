"""Direct preference optimization (the book's bonus notebook ch07/04) in Python PyTorch, for the
DPO golden tests: the real instruction-data-with-preference.json (1,100 entries with instruction,
input, output, chosen, rejected), tiktoken's GPT-2 encoding, and the notebook's data pipeline and
loss written here from their description:

  split      file order: train = first int(n * 0.85), test = next int(n * 0.1), validation = rest
             (fixtures_instruct.split).
  dataset    prompt = the Alpaca prompt (fixtures_instruct.prompt_of, no response);
             chosen = prompt + "\\n\\n### Response:\\n" + entry["chosen"], rejected likewise with
             entry["rejected"]; each of the three stored as its plain tiktoken encoding.
  collate    common = max over the batch of max(len(chosen) + 1, len(rejected) + 1); every chosen
             and rejected row is padded with 50256 to `common`; its mask is True on the row's own
             tokens and False on the padding, and with mask_prompt also False on the first
             len(prompt) + 2 positions; the four stacks (chosen, rejected, chosen_mask,
             rejected_mask) are then cut to allowed_max_length columns (when one is given). The
             unpadded prompts are kept as a list of 1-D int64 tensors.
  logprobs   per row: the mean, over the positions where mask[:, 1:] is True, of
             log_softmax(logits[:, :-1]) taken at labels[:, 1:] (labels = the input ids).
  loss       z = (policy_chosen - policy_rejected) - (reference_chosen - reference_rejected);
             loss = mean(-logsigmoid(beta * z)); chosen reward = mean(policy_chosen -
             reference_chosen), rejected reward = mean(policy_rejected - reference_rejected)
             (both detached). Policy log-probs come from two forward passes (chosen, rejected);
             the reference's are computed under no_grad. beta = 0.1.

The model is the small GPT of fixtures_train.py with GPT-2's vocabulary (SFT_CONFIG: vocab 50257,
context 128, emb 32, 4 heads, 2 layers, drop 0.0, qkv_bias True). Initial weights:
torch.manual_seed(123); GPTModel -> policy_init.pt; torch.manual_seed(456); GPTModel ->
reference_init.pt (torch.save of a plain name -> tensor dict, the ".mask" buffers left out).

Files:
  policy_init.pt, reference_init.pt   the weights above.
  example.json   the notebook's example batch: entries 0 and 1 of the whole file (not the split),
                 collate without a length cut, prompt masked: "prompt", "chosen", "rejected"
                 (token rows), "chosen_mask", "rejected_mask" (0/1 rows); then, policy =
                 policy_init and reference = reference_init, both in eval mode, no grad:
                 "policy_chosen_logps", "policy_rejected_logps", "reference_chosen_logps",
                 "reference_rejected_logps" (one value per row), "loss", "chosen_reward",
                 "rejected_reward"; and "same_model_loss", the loss when the reference is the
                 policy itself (ln 2).
  lengths.json   {"train_lengths": [...], "num_batches": n}: the chosen stack's length of every
                 batch of one pass over torch.manual_seed(123); DataLoader(train, batch 8,
                 shuffle, drop_last, collate with allowed_max_length 1024, num_workers 0).
  train.json     DPO_STEPS optimizer steps, in the order
                   torch.manual_seed(123); train loader as above but allowed_max_length 128,
                   validation DataLoader(batch 8, no shuffle, no drop_last, same collate);
                   policy = GPTModel loaded from policy_init.pt; reference = another GPTModel
                   loaded from policy_init.pt too (the notebook starts both from the same SFT
                   weights), eval mode, never updated; torch.manual_seed(123); AdamW(policy
                   parameters, lr 5e-4 (the notebook's 5e-6 raised so that 10 steps move), weight
                   decay 0.01); policy.train(); per batch: zero_grad, DPO loss, backward, step,
                   tokens_seen += chosen.numel(); the step's loss and margin (chosen reward -
                   rejected reward) recorded; every 5 steps (from step 0): policy.eval(), no grad,
                   for the training loader and then the validation loader a new pass over its
                   first 2 batches (the means of loss, chosen reward, rejected reward),
                   policy.train().
                 {"model", "settings", "step_losses", "step_margins", "evals": [{"step",
                 "tokens_seen", "train_loss", "val_loss", "train_chosen_reward",
                 "train_rejected_reward", "val_chosen_reward", "val_rejected_reward"}]}.
                 step_losses[0] is ln 2: policy and reference are the same weights at step 0.
"""
import ctypes
import json
import math

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from fixtures_data import find_data, gpt2_encoding
from fixtures_instruct import PREAMBLE, prompt_of, split  # noqa: F401  (PREAMBLE: the prompt's text)

PAD = 50256
BATCH_SIZE = 8
SEED = 123
REFERENCE_SEED = 456
BETA = 0.1
RESPONSE = "\n\n### Response:\n"

SFT_CONFIG = {"vocab_size": 50257, "context_length": 128, "emb_dim": 32, "n_heads": 4,
              "n_layers": 2, "drop_rate": 0.0, "qkv_bias": True}
DPO = {"seed": SEED, "batch_size": BATCH_SIZE, "allowed_max_length": 128, "learning_rate": 5e-4,
       "weight_decay": 0.01, "beta": BETA, "eval_freq": 5, "eval_iter": 2, "steps": 10}


class PreferenceData(Dataset):
    """Each item: the token ids of the prompt, of prompt + chosen response, of prompt + rejected."""

    def __init__(self, entries, enc):
        self.items = []
        for entry in entries:
            prompt = prompt_of(entry, "alpaca")
            self.items.append({
                "prompt": enc.encode(prompt),
                "chosen": enc.encode(prompt + RESPONSE + entry["chosen"]),
                "rejected": enc.encode(prompt + RESPONSE + entry["rejected"]),
            })

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def collate(batch, pad=PAD, allowed_max_length=None, mask_prompt=True):
    common = max(max(len(item["chosen"]) + 1, len(item["rejected"]) + 1) for item in batch)
    out = {"prompt": [], "chosen": [], "rejected": [], "chosen_mask": [], "rejected_mask": []}
    for item in batch:
        out["prompt"].append(torch.tensor(item["prompt"], dtype=torch.int64))
        for key in ("chosen", "rejected"):
            seq = item[key]
            row = torch.tensor(list(seq) + [pad] * (common - len(seq)), dtype=torch.int64)
            mask = torch.ones(common, dtype=torch.bool)
            mask[len(seq):] = False
            if mask_prompt:
                mask[:len(item["prompt"]) + 2] = False
            out[key].append(row)
            out[f"{key}_mask"].append(mask)
    for key in ("chosen", "rejected", "chosen_mask", "rejected_mask"):
        stacked = torch.stack(out[key])
        out[key] = stacked if allowed_max_length is None else stacked[:, :allowed_max_length]
    return out


def collate_fn(allowed_max_length, mask_prompt=True):
    def fn(batch):
        return collate(batch, PAD, allowed_max_length, mask_prompt)
    return fn


def compute_logprobs(logits, labels, mask):
    labels = labels[:, 1:]
    logits = logits[:, :-1, :]
    logp = F.log_softmax(logits, dim=-1)
    selected = torch.gather(logp, -1, labels.unsqueeze(-1)).squeeze(-1)
    m = mask[:, 1:].float()
    return (selected * m).sum(-1) / m.sum(-1)


def dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta=BETA):
    z = (policy_chosen - policy_rejected) - (reference_chosen - reference_rejected)
    loss = (-F.logsigmoid(beta * z)).mean()
    chosen_reward = (policy_chosen - reference_chosen).detach().mean()
    rejected_reward = (policy_rejected - reference_rejected).detach().mean()
    return loss, chosen_reward, rejected_reward


def batch_logprobs(batch, policy, reference):
    """(policy chosen, policy rejected, reference chosen, reference rejected) per row."""
    pc = compute_logprobs(policy(batch["chosen"]), batch["chosen"], batch["chosen_mask"])
    pr = compute_logprobs(policy(batch["rejected"]), batch["rejected"], batch["rejected_mask"])
    with torch.no_grad():
        rc = compute_logprobs(reference(batch["chosen"]), batch["chosen"], batch["chosen_mask"])
        rr = compute_logprobs(reference(batch["rejected"]), batch["rejected"],
                              batch["rejected_mask"])
    return pc, pr, rc, rr


def dpo_loss_batch(batch, policy, reference, beta=BETA):
    return dpo_loss(*batch_logprobs(batch, policy, reference), beta=beta)


def dpo_loss_loader(loader, policy, reference, num_batches, beta=BETA):
    """Means over the first num_batches batches of a new pass: (loss, chosen, rejected reward)."""
    n = min(num_batches, len(loader))
    loss = chosen = rejected = 0.0
    for i, batch in enumerate(loader):
        if i >= n:
            break
        l, c, r = dpo_loss_batch(batch, policy, reference, beta)
        loss, chosen, rejected = loss + l.item(), chosen + c.item(), rejected + r.item()
    return loss / n, chosen / n, rejected / n


def state_dict_of(model):
    return {k: v.clone() for k, v in model.state_dict().items() if not k.endswith(".mask")}


def load(path):
    from fixtures_train import GPTModel

    model = GPTModel(SFT_CONFIG)
    missing, unexpected = model.load_state_dict(torch.load(path), strict=False)
    assert not unexpected and all(k.endswith(".mask") for k in missing), (missing, unexpected)
    return model


def rows(t):
    return t.to(torch.int64).tolist()


def example(out_dir, data, enc):
    batch = collate([PreferenceData(data[:2], enc)[i] for i in range(2)], PAD, None, True)
    policy = load(out_dir / "policy_init.pt").eval()
    reference = load(out_dir / "reference_init.pt").eval()
    with torch.no_grad():
        pc, pr, rc, rr = batch_logprobs(batch, policy, reference)
        loss, cr, rrw = dpo_loss(pc, pr, rc, rr)
        same, _, _ = dpo_loss_batch(batch, policy, policy)
    assert abs(same.item() - math.log(2)) < 1e-6, same.item()
    record = {
        "prompt": [p.tolist() for p in batch["prompt"]],
        "chosen": rows(batch["chosen"]), "rejected": rows(batch["rejected"]),
        "chosen_mask": rows(batch["chosen_mask"]), "rejected_mask": rows(batch["rejected_mask"]),
        "policy_chosen_logps": pc.tolist(), "policy_rejected_logps": pr.tolist(),
        "reference_chosen_logps": rc.tolist(), "reference_rejected_logps": rr.tolist(),
        "loss": loss.item(), "chosen_reward": cr.item(), "rejected_reward": rrw.item(),
        "same_model_loss": same.item(),
    }
    (out_dir / "example.json").write_text(json.dumps(record))


def lengths(out_dir, train):
    torch.manual_seed(SEED)
    loader = DataLoader(train, batch_size=BATCH_SIZE, shuffle=True, drop_last=True,
                        collate_fn=collate_fn(1024), num_workers=0)
    record = {"train_lengths": [b["chosen"].shape[1] for b in loader], "num_batches": len(loader)}
    (out_dir / "lengths.json").write_text(json.dumps(record))


def train_run(out_dir, train, val):
    s = DPO
    fn = collate_fn(s["allowed_max_length"])
    torch.manual_seed(SEED)
    train_loader = DataLoader(train, batch_size=BATCH_SIZE, shuffle=True, drop_last=True,
                              collate_fn=fn, num_workers=0)
    val_loader = DataLoader(val, batch_size=BATCH_SIZE, shuffle=False, drop_last=False,
                            collate_fn=fn, num_workers=0)
    policy = load(out_dir / "policy_init.pt")
    reference = load(out_dir / "policy_init.pt")
    reference.eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    torch.manual_seed(SEED)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=s["learning_rate"],
                                  weight_decay=s["weight_decay"])
    step_losses, step_margins, evals = [], [], []
    global_step, tokens_seen = -1, 0
    policy.train()
    for batch in train_loader:
        optimizer.zero_grad()
        loss, cr, rr = dpo_loss_batch(batch, policy, reference, s["beta"])
        loss.backward()
        optimizer.step()
        tokens_seen += batch["chosen"].numel()
        global_step += 1
        step_losses.append(loss.item())
        step_margins.append((cr - rr).item())
        if global_step % s["eval_freq"] == 0:
            policy.eval()
            with torch.no_grad():
                tl, tc, tr = dpo_loss_loader(train_loader, policy, reference, s["eval_iter"],
                                             s["beta"])
                vl, vc, vr = dpo_loss_loader(val_loader, policy, reference, s["eval_iter"],
                                             s["beta"])
            policy.train()
            evals.append({"step": global_step, "tokens_seen": tokens_seen, "train_loss": tl,
                          "val_loss": vl, "train_chosen_reward": tc, "train_rejected_reward": tr,
                          "val_chosen_reward": vc, "val_rejected_reward": vr})
        if global_step + 1 >= s["steps"]:
            break
    assert abs(step_losses[0] - math.log(2)) < 1e-6, step_losses[0]
    record = {"model": SFT_CONFIG, "settings": s, "step_losses": step_losses,
              "step_margins": step_margins, "evals": evals}
    (out_dir / "train.json").write_text(json.dumps(record, indent=1))


def heap_top_pad(nbytes):
    """glibc's M_TOP_PAD (what MALLOC_TOP_PAD_ sets), where there is glibc; True when set.

    Every forward pass here allocates and frees logits of 8 x 128 x 50257 floats (200 MB) and
    their log-softmax; with glibc's defaults the heap is grown and trimmed again and again and
    the kernel's page faults take half the run (measured: 45 s -> 25 s on 2 cores). The setting
    changes the speed only, never a value."""
    try:
        return ctypes.CDLL("libc.so.6").mallopt(-2, ctypes.c_int(nbytes)) == 1  # M_TOP_PAD
    except (OSError, AttributeError):
        return False


def make(out_dir, data_dir):
    torch.set_num_threads(1)
    padded = heap_top_pad(1 << 30)
    try:
        make_files(out_dir, data_dir)
    finally:
        if padded:
            heap_top_pad(128 * 1024)  # glibc's default


def make_files(out_dir, data_dir):
    from fixtures_train import GPTModel

    enc = gpt2_encoding(data_dir)
    path = find_data(data_dir, "instruction-data-with-preference.json")
    data = json.loads(path.read_text(encoding="utf-8"))

    torch.manual_seed(SEED)
    torch.save(state_dict_of(GPTModel(SFT_CONFIG)), out_dir / "policy_init.pt")
    torch.manual_seed(REFERENCE_SEED)
    torch.save(state_dict_of(GPTModel(SFT_CONFIG)), out_dir / "reference_init.pt")

    example(out_dir, data, enc)
    train, val, _ = split(data)
    train_set, val_set = PreferenceData(train, enc), PreferenceData(val, enc)
    lengths(out_dir, train_set)
    train_run(out_dir, train_set, val_set)


if __name__ == "__main__":
    import pathlib
    import sys

    from make_fixtures import default_data_dir

    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/fx/dpo")
    out.mkdir(parents=True, exist_ok=True)
    make(out, default_data_dir())
