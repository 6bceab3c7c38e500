// The dl-variance paper's own tables (Pham et al., ASE 2020; ../shared/design/VARIANCE.md),
// computed from a study's runs, and the step that turns settings into the paper's figures.
//
//   Table 2  per setting and criterion: the overall test accuracy's max - min and sample SD
//            with its 90% CI; per class, the largest max - min and the largest SD with its
//            90% CI (the classes they belong to);
//   Table 3  the same spread relative to the mean (relative SD = SD / mean, in %): of the
//            overall accuracy, the largest of any class, and of the convergence time; and
//            the convergence time's max - min relative to its min (the paper's "training
//            time difference", up to 145.3%);
//   maxima   each figure the paper printed is the largest value over its library
//            combinations and both selection criteria (best_loss, best_acc): paper_maxima
//            takes, per table group (a study file's `table_group`, by default "default"
//            when algorithmic seeds vary and "fixed-seed" otherwise), the largest value
//            over the group's settings and those two criteria, and says where it came from.
//
// Weak runs: the paper's "even after excluding weak models". A run is weak when its test
// accuracy is below twice chance, 2 / classes (20% on MNIST; the paper's weak LeNet-5 runs
// had 8.6, 9.9, 10.6 and 19.7%), or below halfway from chance to 1 where that is lower (a
// task of 2 or 3 classes: 75% for 2). A run loses a class when some class's test accuracy
// is below chance (1 / classes): no better on that class than a guess. Both thresholds are
// detdl's reading; the paper gave none.
#pragma once
#include <string>
#include <vector>

#include "variance/stats.h"
#include "variance/store.h"

namespace detdl::variance {

struct PaperRow {
  std::string setting, group;
  Selection criterion = Selection::last;
  std::size_t n = 0;  // runs whose selected test accuracy is finite
  std::size_t classes = 0;
  // Table 2 (accuracies as fractions).
  double mean = kNaN, max_diff = kNaN, sd = kNaN;
  Interval sd_ci;                       // 90%, chi-square
  double class_max_diff = kNaN;         // the largest per-class max - min
  std::int64_t class_of_max_diff = -1;  // ties: the lowest class; -1: none
  double class_max_sd = kNaN;           // the largest per-class sample SD
  Interval class_sd_ci;                 // its 90% CI (over that class's n values)
  std::int64_t class_of_max_sd = -1;
  std::size_t weak_runs = 0;            // test accuracy < weak_threshold(classes)
  std::size_t runs_losing_a_class = 0;  // some class < 1 / classes
  double max_diff_without_weak = kNaN;  // max - min over the runs that are not weak
  // Table 3 (in %).
  double relative_sd = kNaN;            // 100 sd / mean
  double class_max_relative_sd = kNaN;  // the largest of any class's 100 sd / mean
  std::int64_t class_of_max_relative_sd = -1;
  double time_relative_sd = kNaN;  // convergence time: 100 sd / mean
  double time_diff_pct = kNaN;     // convergence time: 100 (max - min) / min
};

// `runs` all of one setting (else std::invalid_argument, also when empty); `group` is
// copied into the row. Classes: the most any run's selected epoch has; a class's values
// are the runs' finite ones.
PaperRow paper_row(const std::vector<StoredRun>& runs, Selection criterion,
                   const std::string& group);

// One figure of the paper's table: the largest value of one column over a group's rows,
// and the row it came from (ties: the first row in the given order).
struct PaperFigure {
  double value = kNaN;
  std::string setting;
  Selection criterion = Selection::last;
};

struct PaperMaximum {
  std::string group;
  std::vector<std::string> settings;  // the group's settings, in row order
  std::vector<Selection> criteria;    // the criteria combined
  std::size_t rows = 0;               // setting x criterion rows combined
  PaperFigure max_diff, sd, class_max_diff, max_diff_without_weak, time_diff_pct;
  std::size_t weak_runs = 0;  // the most weak runs in one row
  std::size_t runs_losing_a_class = 0;
};

// Per group (in the order groups first appear in `rows`): the maxima over the rows whose
// criterion is best_loss or best_acc, as the paper combined them; when the rows have
// neither, over every row (a study that selects only `last`). NaN values never win.
std::vector<PaperMaximum> paper_maxima(const std::vector<PaperRow>& rows);

// min(2 / classes, (1 + 1 / classes) / 2); NaN for 0 classes.
double weak_threshold(std::size_t classes);

// The default table group of a setting whose runs vary as what_varies (analysis.h) says.
std::string default_table_group(const std::string& varies);

}  // namespace detdl::variance
