// Learning-rate schedules of appendix D against BOOK.md §11.2's table (float64 values).
#include "catch.h"
#include "llmfs/core/error.h"
#include "llmfs/train/lr_schedule.h"

namespace {

struct Row {
  int64_t step;
  double lr;
};

void check_rows(const llmfs::LrSchedule& schedule, const std::vector<Row>& rows) {
  for (const auto& [step, lr] : rows) {
    INFO("step " << step);
    // The table's digits are the shortest repr of the float64 result: equality is exact.
    CHECK(schedule.lr(step) == lr);
  }
}

}  // namespace

TEST_CASE("warmup steps are int(0.2 * total): 27 for 9 batches x 15 epochs (CD-01)",
          "[unit][train][book]") {
  CHECK(llmfs::warmup_steps_from_fraction(0.2, 9 * 15) == 27);
  CHECK(llmfs::warmup_steps_from_fraction(0.0, 100) == 0);
  CHECK_THROWS_AS(llmfs::warmup_steps_from_fraction(1.5, 100), llmfs::Error);
}

TEST_CASE("linear warmup reproduces appendix D's D.1 rates", "[unit][train][book]") {
  // BOOK.md §11.2, D.1: initial 1e-4, peak 0.01, 27 warmup steps, 135 steps.
  check_rows(llmfs::LrSchedule::warmup_only(1e-4, 0.01, 27), {{0, 0.0001},
                                                              {1, 0.00046666666666666666},
                                                              {26, 0.009633333333333332},
                                                              {27, 0.01},
                                                              {28, 0.01},
                                                              {81, 0.01},
                                                              {134, 0.01}});
}

TEST_CASE("warmup + cosine decay reproduces appendix D's D.2 rates", "[unit][train][book]") {
  // BOOK.md §11.2, D.2: as D.1 with cosine decay to min 1e-5.
  check_rows(llmfs::LrSchedule::warmup_cosine(1e-4, 0.01, 1e-5, 27, 135),
             {{0, 0.0001},
              {1, 0.00046666666666666666},
              {26, 0.009633333333333332},
              {27, 0.01},
              {28, 0.009997886865660593},
              {81, 0.005005},
              {134, 1.2113134339408007e-05}});
}

TEST_CASE("the appendix D run's schedule (D.4) reproduces its rates", "[unit][train][book]") {
  // BOOK.md §11.2, D.4: initial 1e-5, peak 0.001, min 1e-5, 27 warmup steps, 135 steps.
  check_rows(llmfs::LrSchedule::warmup_cosine(1e-5, 0.001, 1e-5, 27, 135),
             {{0, 1e-05},
              {1, 4.6666666666666665e-05},
              {26, 0.0009633333333333333},
              {27, 0.001},
              {28, 0.0009997905902906893},
              {81, 0.000505},
              {134, 1.0209409709310705e-05}});
}

TEST_CASE("a constant schedule never writes the optimizer's rate", "[unit][train]") {
  const auto s = llmfs::LrSchedule::constant(4e-4);
  CHECK_FALSE(s.writes_lr());
  CHECK(s.lr(0) == 4e-4);
  CHECK(s.lr(1000) == 4e-4);
  CHECK(llmfs::LrSchedule::warmup_cosine(0, 1, 0, 1, 10).writes_lr());
}

TEST_CASE("a warmup as long as the run is rejected", "[unit][train]") {
  CHECK_THROWS_WITH(
      llmfs::LrSchedule::warmup_cosine(1e-5, 1e-3, 1e-5, 10, 10),
      llmfs::test::contains_text("warmup_steps (10) must be below the total steps (10)"));
}
