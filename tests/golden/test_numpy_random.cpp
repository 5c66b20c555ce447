// NumpyRandomState against live numpy (BOOK.md §1.5): np.random.RandomState(seed)'s 32-bit
// outputs, bounded integers, permutation and choice(replace=False) for several seeds and sizes.
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "catch.h"
#include "llmfs/core/error.h"
#include "llmfs/core/numpy_random.h"
#include "run_python.h"

namespace {

// Each argument "op:seed:a:b" prints one line of space-separated numbers:
//   u32:seed:k      k outputs of next_uint32 (randint with range 2^32 draws one each)
//   int:seed:max:k  k draws of randint(0, max + 1) (numpy's masked random_interval(max))
//   perm:seed:n     permutation(n)
//   choice:seed:n:m choice(n, m, replace=False)
constexpr const char* kScript = R"(
import sys
import numpy as np
for arg in sys.argv[1:]:
    op, seed, *rest = arg.split(":")
    rs = np.random.RandomState(int(seed))
    if op == "u32":
        v = rs.randint(0, 2**32, size=int(rest[0]), dtype=np.uint64)
    elif op == "int":
        v = [rs.randint(0, int(rest[0]) + 1, dtype=np.uint64) for _ in range(int(rest[1]))]
    elif op == "perm":
        v = rs.permutation(int(rest[0]))
    else:
        v = rs.choice(int(rest[0]), int(rest[1]), replace=False)
    print(" ".join(str(int(x)) for x in v))
)";

std::vector<uint64_t> parse_line(const std::string& line) {
  std::istringstream in(line);
  std::vector<uint64_t> out;
  uint64_t v = 0;
  while (in >> v) out.push_back(v);
  return out;
}

std::vector<uint64_t> as_u64(const std::vector<int64_t>& v) { return {v.begin(), v.end()}; }

}  // namespace

TEST_CASE("NumpyRandomState draws what np.random.RandomState draws", "[golden][numpy]") {
  struct Case {
    std::string arg;
    std::vector<uint64_t> ours;
  };
  std::vector<Case> cases;
  for (const uint32_t seed : {0U, 1U, 123U, 5489U, 4294967295U}) {
    const auto s = std::to_string(seed);
    {
      llmfs::NumpyRandomState rs(seed);
      std::vector<uint64_t> v;
      for (int i = 0; i < 1300; ++i) v.push_back(rs.next_uint32());  // past two twists
      cases.push_back({"u32:" + s + ":1300", v});
    }
    for (const uint64_t max :
         {uint64_t{1}, uint64_t{6}, uint64_t{1000}, uint64_t{0x80000000}, uint64_t{0xffffffff},
          uint64_t{0x100000000}, uint64_t{123456789012345}, uint64_t{0x7fffffffffffffff}}) {
      llmfs::NumpyRandomState rs(seed);
      std::vector<uint64_t> v;
      for (int i = 0; i < 20; ++i) v.push_back(rs.random_interval(max));
      cases.push_back({"int:" + s + ":" + std::to_string(max) + ":20", v});
    }
    for (const int64_t n : {1, 2, 10, 1494, 5000}) {
      cases.push_back({"perm:" + s + ":" + std::to_string(n),
                       as_u64(llmfs::NumpyRandomState(seed).permutation(n))});
    }
    for (const auto& [n, m] : std::vector<std::pair<int64_t, int64_t>>{
             {4825, 747}, {10, 3}, {10, 10}, {1, 1}, {300, 0}}) {
      cases.push_back({"choice:" + s + ":" + std::to_string(n) + ":" + std::to_string(m),
                       as_u64(llmfs::NumpyRandomState(seed).choice(n, m))});
    }
  }
  std::vector<std::string> args;
  for (const auto& c : cases) args.push_back(c.arg);
  const auto [out, code] = llmfs::test::run_python(kScript, args, "llmfs_golden_numpy_random.py");
  INFO(out.substr(0, 2000));
  REQUIRE(code == 0);
  std::istringstream lines(out);
  std::string line;
  for (const auto& c : cases) {
    REQUIRE(std::getline(lines, line));
    INFO(c.arg);
    CHECK(parse_line(line) == c.ours);
  }
}

TEST_CASE("NumpyRandomState: reference output and argument checks", "[golden][numpy]") {
  // MT19937's reference output for the default seed 5489.
  CHECK(llmfs::NumpyRandomState(5489).next_uint32() == 3499211612U);
  CHECK(llmfs::NumpyRandomState(123).choice(4825, 747).size() == 747);
  CHECK(llmfs::NumpyRandomState(7).random_interval(0) == 0);
  CHECK_THROWS_AS(llmfs::NumpyRandomState(1).choice(3, 4), llmfs::Error);
  CHECK_THROWS_AS(llmfs::NumpyRandomState(1).permutation(-1), llmfs::Error);
  CHECK(llmfs::NumpyRandomState(1).permutation(0).empty());
}
