#include "variance/stats.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <stdexcept>

namespace detdl::variance {

namespace {

constexpr double kEps = 1e-16;
constexpr double kTiny = 1e-300;
constexpr int kMaxIterations = 10000;

void check_one_setting(const std::vector<StoredRun>& runs, const char* who) {
  if (runs.empty()) throw std::invalid_argument(std::string(who) + ": no runs");
  for (const auto& r : runs)
    if (r.setting != runs.front().setting)
      throw std::invalid_argument(std::string(who) + ": runs of two settings ('" +
                                  runs.front().setting + "', '" + r.setting + "')");
}

void check_has_epochs(const StoredRun& run, const char* who) {
  if (run.epochs.empty())
    throw std::invalid_argument(std::string(who) + ": run " + run.key + " has no epochs");
}

double metric(const MetricMap& m, const char* name) {
  const auto it = m.find(name);
  return it == m.end() ? kNaN : it->second;
}

// Index of the best value: `better(a, b)` strict; NaN never wins; ties keep the earliest.
template <class Better>
std::size_t best_index(const std::vector<double>& v, Better better) {
  std::size_t best = 0;
  bool found = false;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (std::isnan(v[i])) continue;
    if (!found || better(v[i], v[best])) {
      best = i;
      found = true;
    }
  }
  return best;  // all NaN: the first
}

// max, min, mean, SD with its 90% CI of finite values; `hashes`: the final weight hash of
// the run of each value.
SpreadOf spread_of(const std::vector<double>& values, const std::vector<std::string>& hashes) {
  SpreadOf s;
  s.n = values.size();
  if (values.empty()) return s;
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  s.min = *lo;
  s.max = *hi;
  s.mean = mean_of(values);
  s.std = sample_std(values);
  s.std_ci = std_confidence_interval(s.std, s.n, 0.90);
  s.max_diff = s.max - s.min;
  s.identical_despite_hashes =
      s.max_diff == 0 && std::set<std::string>(hashes.begin(), hashes.end()).size() > 1;
  return s;
}

bool any_nan(const std::vector<double>& v) {
  return std::any_of(v.begin(), v.end(), [](double x) { return std::isnan(x); });
}

double median_of(std::vector<double> v) {
  return quantile_linear(sorted_nan_last(std::move(v)), 0.5);
}

// Continued fraction for I_x(a, b) (modified Lentz), converges for x < (a+1)/(a+b+2).
double beta_continued_fraction(double a, double b, double x) {
  const double qab = a + b, qap = a + 1, qam = a - 1;
  double c = 1, d = 1 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= kMaxIterations; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < kEps) return h;
  }
  throw std::runtime_error("regularized_beta: continued fraction did not converge");
}

double gamma_pdf(double a, double x) {
  return std::exp((a - 1) * std::log(x) - x - std::lgamma(a));
}

}  // namespace

std::vector<std::vector<StoredRun>> group_by_setting(const std::vector<StoredRun>& runs) {
  std::vector<std::vector<StoredRun>> groups;
  std::map<std::string, std::size_t> index;
  for (const auto& r : runs) {
    const auto [it, inserted] = index.emplace(r.setting, groups.size());
    if (inserted) groups.emplace_back();
    groups[it->second].push_back(r);
  }
  return groups;
}

// ---- selection --------------------------------------------------------------------------

std::string_view selection_name(Selection s) {
  switch (s) {
    case Selection::best_loss: return "best_loss";
    case Selection::best_acc: return "best_acc";
    case Selection::last: return "last";
  }
  return "?";
}

Selection parse_selection(std::string_view name) {
  for (const Selection s : kSelections)
    if (selection_name(s) == name) return s;
  throw std::invalid_argument("selection criterion '" + std::string(name) +
                              "': expected best_loss, best_acc or last");
}

SelectedEpoch select_epoch(const StoredRun& run, Selection criterion) {
  check_has_epochs(run, "select_epoch");
  std::size_t index = run.epochs.size() - 1;
  if (criterion != Selection::last) {
    const bool use_validation = run.has_validation();
    const char* name = criterion == Selection::best_loss ? "loss" : "accuracy";
    std::vector<double> v;
    for (const auto& e : run.epochs)
      v.push_back(metric(use_validation ? e.validation : e.test, name));
    index = criterion == Selection::best_loss
                ? best_index(v, [](double x, double best) { return x < best; })
                : best_index(v, [](double x, double best) { return x > best; });
  }
  const EpochRow& e = run.epochs[index];
  SelectedEpoch out;
  out.epoch = e.epoch;
  out.test_accuracy = metric(e.test, "accuracy");
  out.test_loss = metric(e.test, "loss");
  out.class_accuracy = e.test_class_accuracy;
  out.weight_hash = e.weight_hash;
  // The study's convergence time: training plus validation of each epoch up to the chosen
  // one (Keras's fit with validation_data), when the record has them; else the epoch's
  // whole time (records written before the split).
  double time = 0;
  for (std::size_t i = 0; i <= index; ++i) {
    const EpochRow& r = run.epochs[i];
    const bool split = !std::isnan(r.train_seconds);
    time += split ? r.train_seconds + (std::isnan(r.validation_seconds) ? 0 : r.validation_seconds)
                  : r.seconds;
  }
  out.convergence_time = time;
  return out;
}

// ---- distributions ----------------------------------------------------------------------

double regularized_gamma_p(double a, double x) {
  if (!(a > 0) || !(x >= 0)) {
    if (std::isnan(a) || std::isnan(x)) return kNaN;
    throw std::invalid_argument("regularized_gamma_p: need a > 0 and x >= 0");
  }
  if (x == 0) return 0;
  if (std::isinf(x)) return 1;
  const double log_prefix = a * std::log(x) - x - std::lgamma(a);
  if (x < a + 1) {
    // series: P = e^{-x} x^a / Gamma(a) * sum_n x^n / (a (a+1) ... (a+n))
    double ap = a, del = 1 / a, sum = del;
    for (int n = 0; n < kMaxIterations; ++n) {
      ap += 1;
      del *= x / ap;
      sum += del;
      if (std::fabs(del) < std::fabs(sum) * kEps) return sum * std::exp(log_prefix);
    }
    throw std::runtime_error("regularized_gamma_p: series did not converge");
  }
  // continued fraction for Q = 1 - P (modified Lentz)
  double b = x + 1 - a, c = 1 / kTiny, d = 1 / b, h = d;
  for (int i = 1; i <= kMaxIterations; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < kEps) return 1 - std::exp(log_prefix) * h;
  }
  throw std::runtime_error("regularized_gamma_p: continued fraction did not converge");
}

double regularized_gamma_p_inverse(double a, double p) {
  if (!(a > 0) || !(p > 0 && p < 1))
    throw std::invalid_argument("regularized_gamma_p_inverse: need a > 0 and 0 < p < 1");
  // Bracket [lo, hi] with P(lo) < p <= P(hi), then Newton steps that fall back to bisection
  // whenever a step leaves the bracket; stops at full double precision.
  double lo = 0, hi = std::max(a, 1.0);
  while (regularized_gamma_p(a, hi) < p) {
    lo = hi;
    hi *= 2;
  }
  double x = 0.5 * (lo + hi);
  for (int i = 0; i < 1000; ++i) {
    const double f = regularized_gamma_p(a, x) - p;
    if (f == 0) return x;
    if (f < 0)
      lo = x;
    else
      hi = x;
    const double pdf = gamma_pdf(a, x);
    double next = pdf > 0 ? x - f / pdf : kNaN;
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    if (std::fabs(next - x) <= 4 * std::numeric_limits<double>::epsilon() * x ||
        hi - lo <= 4 * std::numeric_limits<double>::epsilon() * hi)
      return next;
    x = next;
  }
  return x;
}

double chi_square_quantile(double p, double df) {
  if (!(df > 0)) throw std::invalid_argument("chi_square_quantile: df must be > 0");
  return 2 * regularized_gamma_p_inverse(df / 2, p);
}

double regularized_beta(double x, double a, double b) {
  if (std::isnan(x) || std::isnan(a) || std::isnan(b)) return kNaN;
  if (!(a > 0 && b > 0)) throw std::invalid_argument("regularized_beta: need a > 0 and b > 0");
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  const double front = std::exp(log_front);
  if (x < (a + 1) / (a + b + 2)) return front * beta_continued_fraction(a, b, x) / a;
  return 1 - front * beta_continued_fraction(b, a, 1 - x) / b;
}

double f_distribution_sf(double x, double d1, double d2) {
  if (std::isnan(x)) return kNaN;
  if (!(d1 > 0 && d2 > 0)) throw std::invalid_argument("f_distribution_sf: need d1, d2 > 0");
  if (x <= 0) return 1;
  if (std::isinf(x)) return 0;
  // P(F > x) = I_{d2 / (d2 + d1 x)}(d2/2, d1/2): no 1 - (...) cancellation in the tail
  return regularized_beta(d2 / (d2 + d1 * x), d2 / 2, d1 / 2);
}

double normal_sf(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }

// ---- descriptive ------------------------------------------------------------------------

double mean_of(const std::vector<double>& v) {
  if (v.empty()) return kNaN;
  double sum = 0;
  for (const double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

double sample_std(const std::vector<double>& v) {
  if (v.size() < 2) return kNaN;
  const double m = mean_of(v);
  double ss = 0;
  for (const double x : v) ss += (x - m) * (x - m);
  return std::sqrt(ss / static_cast<double>(v.size() - 1));
}

std::vector<double> sorted_nan_last(std::vector<double> v) {
  std::stable_sort(v.begin(), v.end(), [](double a, double b) {
    if (std::isnan(a)) return false;
    if (std::isnan(b)) return true;
    return a < b;
  });
  return v;
}

double quantile_linear(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return kNaN;
  if (!(q >= 0 && q <= 1)) throw std::invalid_argument("quantile_linear: q must be in [0, 1]");
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const double t = pos - static_cast<double>(lo);
  if (t == 0 || lo + 1 >= sorted.size()) return sorted[lo];
  const double a = sorted[lo], b = sorted[lo + 1];
  const double diff = b - a;
  // numpy's _lerp: from the nearer end, so that t -> 1 lands exactly on b
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

Interval std_confidence_interval(double sd, std::size_t n, double confidence) {
  if (!(confidence > 0 && confidence < 1))
    throw std::invalid_argument("std_confidence_interval: confidence must be in (0, 1)");
  if (n < 2 || std::isnan(sd)) return {};
  const double df = static_cast<double>(n - 1);
  const double alpha = 1 - confidence;
  return {sd * std::sqrt(df / chi_square_quantile(1 - alpha / 2, df)),
          sd * std::sqrt(df / chi_square_quantile(alpha / 2, df))};
}

// ---- one setting ------------------------------------------------------------------------

bool is_regression(const std::vector<StoredRun>& runs) {
  return !runs.empty() && std::all_of(runs.begin(), runs.end(),
                                      [](const StoredRun& r) { return r.is_regression(); });
}

namespace {

// A run's selected epoch counts when its setting's metric and its test loss are finite
// there (a loss that is not finite is a net that diverged, whatever its accuracy says).
bool usable(const SelectedEpoch& e, bool regression) {
  return std::isfinite(e.test_loss) && (regression || std::isfinite(e.test_accuracy));
}

}  // namespace

std::vector<double> selected_metric(const std::vector<StoredRun>& runs, Selection criterion,
                                    std::size_t* left_out) {
  const bool regression = is_regression(runs);
  std::vector<double> v;
  std::size_t out = 0;
  for (const auto& r : runs) {
    const SelectedEpoch e = select_epoch(r, criterion);
    if (usable(e, regression))
      v.push_back(regression ? e.test_loss : e.test_accuracy);
    else
      ++out;
  }
  if (left_out) *left_out = out;
  return v;
}

SettingSummary summarize(const std::vector<StoredRun>& runs, Selection criterion) {
  check_one_setting(runs, "summarize");
  SettingSummary s;
  s.setting = runs.front().setting;
  s.criterion = criterion;
  s.n = runs.size();
  s.regression = is_regression(runs);

  std::vector<SelectedEpoch> sel;
  for (const auto& r : runs) {
    sel.push_back(select_epoch(r, criterion));
    s.diverged += r.diverged;
  }
  // The spread statistics: over the runs usable at their selected epoch only, so that a
  // diverged run is neither a NaN that poisons the mean nor a silent 0.
  std::vector<double> acc, loss, time;
  std::vector<std::string> acc_hashes, loss_hashes;
  std::vector<const SelectedEpoch*> used;
  std::size_t classes = 0;
  for (std::size_t i = 0; i < sel.size(); ++i) {
    const auto& e = sel[i];
    time.push_back(e.convergence_time);
    if (!usable(e, s.regression)) {
      ++s.left_out;
      continue;
    }
    used.push_back(&e);
    loss.push_back(e.test_loss);
    loss_hashes.push_back(runs[i].weight_hash);
    if (std::isfinite(e.test_accuracy)) {
      acc.push_back(e.test_accuracy);
      acc_hashes.push_back(runs[i].weight_hash);
    }
    classes = std::max(classes, e.class_accuracy.size());
  }
  const SpreadOf a = spread_of(acc, acc_hashes);
  s.max_acc = a.max;
  s.min_acc = a.min;
  s.mean_acc = a.mean;
  s.std_acc = a.std;
  s.std_ci = a.std_ci;
  s.max_diff = a.max_diff;
  s.acc_identical_despite_hashes = a.identical_despite_hashes;
  s.loss = spread_of(loss, loss_hashes);

  s.class_max_diff.assign(classes, kNaN);
  for (std::size_t c = 0; c < classes; ++c) {
    std::vector<double> v;
    for (const SelectedEpoch* e : used)
      if (c < e->class_accuracy.size() && std::isfinite(e->class_accuracy[c]))
        v.push_back(e->class_accuracy[c]);
    if (v.empty()) continue;
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    s.class_max_diff[c] = *hi - *lo;
    if (s.class_with_max_diff < 0 || s.class_max_diff[c] > s.class_max_diff_value) {
      s.class_with_max_diff = static_cast<std::int64_t>(c);
      s.class_max_diff_value = s.class_max_diff[c];
    }
  }

  const auto sorted_time = sorted_nan_last(time);
  s.min_convergence_time = sorted_time.front();
  s.max_convergence_time = sorted_time.back();
  s.mean_convergence_time = mean_of(time);
  s.convergence_time_diff_pct =
      (s.max_convergence_time - s.min_convergence_time) / s.min_convergence_time * 100;
  s.min_epoch = s.max_epoch = sel.front().epoch;
  for (const auto& e : sel) {
    s.min_epoch = std::min(s.min_epoch, e.epoch);
    s.max_epoch = std::max(s.max_epoch, e.epoch);
  }

  std::set<std::string> hashes;
  for (const auto& r : runs) hashes.insert(r.weight_hash);
  s.distinct_hashes = hashes.size();
  s.all_identical = hashes.size() == 1;

  std::vector<std::vector<std::int32_t>> predictions;
  bool usable = runs.size() >= 2;
  for (const auto& r : runs) {
    if (r.predictions.empty() || r.predictions.size() != runs.front().predictions.size())
      usable = false;
    predictions.push_back(r.predictions);
  }
  if (usable) s.mean_churn = mean_pairwise_churn(predictions);
  return s;
}

// ---- two settings -----------------------------------------------------------------------

TestResult levene_median(const std::vector<std::vector<double>>& groups) {
  const std::size_t k = groups.size();
  if (k < 2) throw std::invalid_argument("levene_median: needs at least two groups");
  std::size_t total = 0;
  for (const auto& g : groups) {
    if (g.empty()) throw std::invalid_argument("levene_median: a group is empty");
    total += g.size();
    if (any_nan(g)) return {};
  }
  if (total <= k) throw std::invalid_argument("levene_median: needs more values than groups");
  // z_ij = |x_ij - median_i|; W = (N-k)/(k-1) sum_i n_i (zbar_i - zbar)^2 / sum_ij (z_ij - zbar_i)^2
  std::vector<std::vector<double>> z(k);
  std::vector<double> zbar(k);
  double grand = 0;
  for (std::size_t i = 0; i < k; ++i) {
    const double med = median_of(groups[i]);
    for (const double x : groups[i]) z[i].push_back(std::fabs(x - med));
    zbar[i] = mean_of(z[i]);
    for (const double v : z[i]) grand += v;
  }
  grand /= static_cast<double>(total);
  double between = 0, within = 0;
  for (std::size_t i = 0; i < k; ++i) {
    between += static_cast<double>(z[i].size()) * (zbar[i] - grand) * (zbar[i] - grand);
    for (const double v : z[i]) within += (v - zbar[i]) * (v - zbar[i]);
  }
  const double d1 = static_cast<double>(k - 1), d2 = static_cast<double>(total - k);
  TestResult r;
  r.statistic = d2 / d1 * between / within;  // 0/0 = NaN (all groups constant), x/0 = inf
  r.p = f_distribution_sf(r.statistic, d1, d2);
  return r;
}

TestResult mann_whitney_u(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.empty() || b.empty()) throw std::invalid_argument("mann_whitney_u: a sample is empty");
  if (any_nan(a) || any_nan(b)) return {};
  const std::size_t n1 = a.size(), n2 = b.size(), n = n1 + n2;
  std::vector<std::pair<double, int>> all;
  for (const double x : a) all.emplace_back(x, 0);
  for (const double x : b) all.emplace_back(x, 1);
  std::stable_sort(all.begin(), all.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  // average ranks for ties; tie term sum (t^3 - t)
  double rank_sum_a = 0, tie_term = 0;
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i;
    while (j < n && all[j].first == all[i].first) ++j;
    const double t = static_cast<double>(j - i);
    const double avg_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (std::size_t m = i; m < j; ++m)
      if (all[m].second == 0) rank_sum_a += avg_rank;
    tie_term += t * t * t - t;
    i = j;
  }
  const double dn1 = static_cast<double>(n1), dn2 = static_cast<double>(n2),
               dn = static_cast<double>(n);
  const double u1 = rank_sum_a - dn1 * (dn1 + 1) / 2;
  const double u2 = dn1 * dn2 - u1;
  const double mu = dn1 * dn2 / 2;
  const double sigma = std::sqrt(dn1 * dn2 / 12 * ((dn + 1) - tie_term / (dn * (dn - 1))));
  // two-sided: the larger U, continuity correction toward the mean; all tied: -0.5/0 = -inf
  const double z = (std::max(u1, u2) - mu - 0.5) / sigma;
  return {u1, std::min(1.0, 2 * normal_sf(z))};
}

TestResult mann_whitney_u_scipy_legacy(const std::vector<double>& a, const std::vector<double>& b) {
  const TestResult two = mann_whitney_u(a, b);  // checks, NaN handling and U1
  if (std::isnan(two.statistic)) return {};
  const double n1n2 = static_cast<double>(a.size()) * static_cast<double>(b.size());
  const double u1 = two.statistic, u2 = n1n2 - u1;
  // Recompute |z| as scipy 1.3 did: (max U - (mu + 0.5)) / sd; all tied: |-0.5 / 0| = inf.
  const std::size_t n = a.size() + b.size();
  std::vector<double> all(a);
  all.insert(all.end(), b.begin(), b.end());
  std::sort(all.begin(), all.end());
  double tie_term = 0;
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i;
    while (j < n && all[j] == all[i]) ++j;
    const double t = static_cast<double>(j - i);
    tie_term += t * t * t - t;
    i = j;
  }
  const double dn = static_cast<double>(n);
  const double sd = std::sqrt(n1n2 / 12 * ((dn + 1) - tie_term / (dn * (dn - 1))));
  const double z = (std::max(u1, u2) - (n1n2 / 2 + 0.5)) / sd;
  return {std::min(u1, u2), normal_sf(std::fabs(z))};
}

double cohens_d(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.empty() || b.empty()) throw std::invalid_argument("cohens_d: a sample is empty");
  if (a.size() + b.size() < 3) return kNaN;  // no degrees of freedom for the pooled SD
  auto ss = [](const std::vector<double>& v) {
    const double m = mean_of(v);
    double s = 0;
    for (const double x : v) s += (x - m) * (x - m);
    return s;
  };
  const double pooled = std::sqrt((ss(a) + ss(b)) / static_cast<double>(a.size() + b.size() - 2));
  return (mean_of(a) - mean_of(b)) / pooled;
}

Comparison compare_settings(const std::vector<StoredRun>& a, const std::vector<StoredRun>& b,
                            Selection criterion) {
  check_one_setting(a, "compare_settings (first setting)");
  check_one_setting(b, "compare_settings (second setting)");
  Comparison c;
  c.setting_a = a.front().setting;
  c.setting_b = b.front().setting;
  c.criterion = criterion;
  // Accuracy against loss compares nothing: such a pair keeps NaN everywhere.
  if (is_regression(a) != is_regression(b)) return c;
  const auto acc_a = selected_metric(a, criterion);
  const auto acc_b = selected_metric(b, criterion);
  if (acc_a.empty() || acc_b.empty()) return c;  // every run of a setting left out
  if (acc_a.size() + acc_b.size() > 2) c.levene_p = levene_median({acc_a, acc_b}).p;
  const auto mw = mann_whitney_u(acc_a, acc_b);
  c.mannwhitney_u = mw.statistic;
  c.mannwhitney_p = mw.p;
  c.mannwhitney_p_legacy = mann_whitney_u_scipy_legacy(acc_a, acc_b).p;
  c.cohens_d = cohens_d(acc_a, acc_b);
  return c;
}

StudyRow study_row(const std::vector<StoredRun>& runs, Selection criterion, bool seeds_vary) {
  check_one_setting(runs, "study_row");
  StudyRow row;
  row.setting = runs.front().setting;
  const auto& e = runs.front().experiment;
  row.network = e.contains("net") && e["net"].is_string() ? e["net"].get<std::string>() : "";
  row.backend_version = runs.front().detdl_version;
  row.criterion = std::string(selection_name(criterion));
  row.random_seed = seeds_vary ? -1 : 1;
  std::vector<double> acc, time, epoch;
  std::vector<std::vector<double>> per_class;  // per run
  std::vector<std::int64_t> counts;
  for (const auto& r : runs) {
    const SelectedEpoch s = select_epoch(r, criterion);
    if (!usable(s, false)) continue;
    acc.push_back(s.test_accuracy);
    time.push_back(s.convergence_time);
    epoch.push_back(static_cast<double>(s.epoch));
    per_class.push_back(s.class_accuracy);
    if (counts.empty()) counts = r.test_class_counts;
    row.tries.push_back({r.repetition, s.test_accuracy, s.convergence_time, s.epoch});
  }
  row.no_try = acc.size();
  if (acc.empty()) return row;
  auto spread = [](const std::vector<double>& v, double& diff, double& hi, double& lo, double& sd,
                   double& mean) {
    const auto [a, b] = std::minmax_element(v.begin(), v.end());
    lo = *a;
    hi = *b;
    diff = hi - lo;
    sd = v.size() >= 2 ? sample_std(v) : kNaN;
    mean = mean_of(v);
  };
  spread(acc, row.max_accuracy_diff, row.max_accuracy, row.min_accuracy, row.std_dev_accuracy,
         row.mean_accuracy);
  spread(time, row.max_convergent_diff, row.max_convergent, row.min_convergent,
         row.std_dev_convergent, row.mean_convergent);
  spread(epoch, row.max_convergent_diff_epoch, row.max_convergent_epoch, row.min_convergent_epoch,
         row.std_dev_convergent_epoch, row.mean_convergent_epoch);
  std::size_t classes = 0;
  for (const auto& c : per_class) classes = std::max(classes, c.size());
  auto count_of = [&](std::int64_t l) {
    return l >= 0 && static_cast<std::size_t>(l) < counts.size() ? counts[l] : std::int64_t{-1};
  };
  for (std::size_t l = 0; l < classes; ++l) {
    std::vector<double> v;
    for (const auto& c : per_class)
      if (l < c.size() && !std::isnan(c[l])) v.push_back(c[l]);
    if (v.empty()) continue;
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    if (*hi - *lo > row.max_per_label_acc_diff) {
      row.max_per_label_acc_diff = *hi - *lo;
      row.max_diff_label = static_cast<std::int64_t>(l);
      row.max_label_accuracy = *hi;
      row.min_label_accuracy = *lo;
    }
    const double sd = v.size() >= 2 ? sample_std(v) : 0.0;
    if (l + 1 < classes) {
      row.max_per_label_acc_diff_study_loop =
          std::max(row.max_per_label_acc_diff_study_loop, *hi - *lo);
      row.max_per_label_acc_std_study_loop = std::max(row.max_per_label_acc_std_study_loop, sd);
    }
    if (sd > row.max_per_label_acc_std) {
      row.max_per_label_acc_std = sd;
      row.max_std_label = static_cast<std::int64_t>(l);
    }
  }
  row.no_samples_max_diff = count_of(row.max_diff_label);
  row.no_samples_max_std = count_of(row.max_std_label);
  return row;
}

// ---- beyond the study -------------------------------------------------------------------

double prediction_churn(const std::vector<std::int32_t>& a, const std::vector<std::int32_t>& b) {
  if (a.size() != b.size())
    throw std::invalid_argument("prediction_churn: predictions of " + std::to_string(a.size()) +
                                " and " + std::to_string(b.size()) + " test rows");
  if (a.empty()) return kNaN;
  std::size_t differ = 0;
  for (std::size_t i = 0; i < a.size(); ++i) differ += a[i] != b[i];
  return static_cast<double>(differ) / static_cast<double>(a.size());
}

double mean_pairwise_churn(const std::vector<std::vector<std::int32_t>>& predictions) {
  if (predictions.size() < 2) return kNaN;
  double sum = 0;
  std::size_t pairs = 0;
  for (std::size_t i = 0; i < predictions.size(); ++i)
    for (std::size_t j = i + 1; j < predictions.size(); ++j) {
      sum += prediction_churn(predictions[i], predictions[j]);
      ++pairs;
    }
  return sum / static_cast<double>(pairs);
}

std::int64_t first_divergence_epoch(const StoredRun& a, const StoredRun& b) {
  const std::size_t common = std::min(a.epochs.size(), b.epochs.size());
  for (std::size_t i = 0; i < common; ++i)
    if (a.epochs[i].weight_hash != b.epochs[i].weight_hash) return static_cast<std::int64_t>(i) + 1;
  if (a.epochs.size() != b.epochs.size()) return static_cast<std::int64_t>(common) + 1;
  return 0;
}

std::int64_t first_divergence_epoch(const std::vector<StoredRun>& runs) {
  // If runs x and y first differ at epoch e, one of them differs from runs[0] at or
  // before e; so comparing with runs[0] finds the earliest divergence of any pair.
  std::int64_t earliest = 0;
  for (std::size_t i = 1; i < runs.size(); ++i) {
    const std::int64_t e = first_divergence_epoch(runs.front(), runs[i]);
    if (e > 0 && (earliest == 0 || e < earliest)) earliest = e;
  }
  return earliest;
}

Interval bootstrap_ci(const std::vector<double>& values, BootstrapStatistic statistic,
                      std::size_t resamples, double confidence, std::uint64_t seed) {
  if (values.empty()) throw std::invalid_argument("bootstrap_ci: no values");
  if (resamples == 0) throw std::invalid_argument("bootstrap_ci: resamples must be > 0");
  if (!(confidence > 0 && confidence < 1))
    throw std::invalid_argument("bootstrap_ci: confidence must be in (0, 1)");
  std::mt19937_64 rng(seed);
  const std::uint64_t n = values.size();
  const std::uint64_t reject_below = (0 - n) % n;  // 2^64 mod n: keeps x % n uniform
  auto draw = [&]() {
    std::uint64_t x;
    do x = rng();
    while (x < reject_below);
    return static_cast<std::size_t>(x % n);
  };
  std::vector<double> stats(resamples), sample(values.size());
  for (std::size_t r = 0; r < resamples; ++r) {
    for (auto& v : sample) v = values[draw()];
    if (statistic == BootstrapStatistic::sample_std) {
      stats[r] = sample_std(sample);
    } else {
      const auto [lo, hi] = std::minmax_element(sample.begin(), sample.end());
      stats[r] = *hi - *lo;
    }
  }
  const auto sorted = sorted_nan_last(std::move(stats));
  const double alpha = 1 - confidence;
  return {quantile_linear(sorted, alpha / 2), quantile_linear(sorted, 1 - alpha / 2)};
}

namespace {

// The max - min of `draws` x `groups` random groups (row-major: draw d's groups are
// [d * groups, (d + 1) * groups)), each group_size distinct values of the pool.
std::vector<double> group_spreads(const std::vector<double>& values, std::size_t group_size,
                                  std::size_t groups, std::size_t draws, std::uint64_t seed) {
  if (values.empty()) throw std::invalid_argument("group_spread: no values");
  if (group_size == 0 || groups == 0 || draws == 0)
    throw std::invalid_argument("group_spread: group size, groups and draws must be > 0");
  if (values.size() < group_size)
    throw std::invalid_argument("group_spread: " + std::to_string(values.size()) +
                                " runs, fewer than a group of " + std::to_string(group_size));
  std::mt19937_64 rng(seed);
  auto below = [&](std::uint64_t n) {  // uniform in [0, n) by rejection
    const std::uint64_t reject_below = (0 - n) % n;
    std::uint64_t x;
    do x = rng();
    while (x < reject_below);
    return static_cast<std::size_t>(x % n);
  };
  std::vector<double> pool(values), out;
  out.reserve(groups * draws);
  for (std::size_t g = 0; g < groups * draws; ++g) {
    // Partial Fisher-Yates: the first group_size entries become a uniform random group.
    for (std::size_t i = 0; i < group_size; ++i)
      std::swap(pool[i], pool[i + below(pool.size() - i)]);
    const auto [lo, hi] = std::minmax_element(pool.begin(), pool.begin() + group_size);
    out.push_back(*hi - *lo);
  }
  return out;
}

std::vector<double> largest_of_groups(const std::vector<double>& spreads, std::size_t groups) {
  std::vector<double> out;
  for (std::size_t d = 0; d + groups <= spreads.size(); d += groups)
    out.push_back(*std::max_element(spreads.begin() + d, spreads.begin() + d + groups));
  return out;
}

}  // namespace

GroupSpread group_spread(const std::vector<double>& values, std::size_t group_size,
                         std::size_t groups, std::size_t draws, std::uint64_t seed) {
  const auto spreads = group_spreads(values, group_size, groups, draws, seed);
  GroupSpread g;
  g.pool = values.size();
  g.group_size = group_size;
  g.groups = groups;
  const auto one = sorted_nan_last(spreads);
  g.one_group_median = quantile_linear(one, 0.5);
  g.one_group_p05 = quantile_linear(one, 0.05);
  g.one_group_p95 = quantile_linear(one, 0.95);
  const auto largest = sorted_nan_last(largest_of_groups(spreads, groups));
  g.largest_median = quantile_linear(largest, 0.5);
  g.largest_p05 = quantile_linear(largest, 0.05);
  g.largest_p95 = quantile_linear(largest, 0.95);
  return g;
}

double group_spread_rank(const std::vector<double>& values, std::size_t group_size,
                         std::size_t groups, std::size_t draws, std::uint64_t seed,
                         double reference) {
  if (std::isnan(reference)) return kNaN;
  const auto largest =
      largest_of_groups(group_spreads(values, group_size, groups, draws, seed), groups);
  std::size_t at_or_below = 0;
  for (double v : largest) at_or_below += v <= reference;
  return static_cast<double>(at_or_below) / static_cast<double>(largest.size());
}

ImplementationSpread implementation_spread(const std::vector<StoredRun>& runs, Selection criterion,
                                           std::size_t resamples, double confidence,
                                           std::uint64_t seed) {
  check_one_setting(runs, "implementation_spread");
  ImplementationSpread out;
  out.n = runs.size();
  bool identical = true;
  for (const auto& r : runs)
    identical = identical && r.weight_hash == runs.front().weight_hash &&
                first_divergence_epoch(runs.front(), r) == 0;
  if (identical) {
    out.exactly_zero = true;
    out.spread = out.sd = 0;
    out.spread_ci = out.sd_ci = {0, 0};
    return out;
  }
  const auto acc = selected_metric(runs, criterion, &out.left_out);
  if (acc.empty()) return out;  // no run with a finite value: nothing to measure
  const auto [lo, hi] = std::minmax_element(acc.begin(), acc.end());
  out.spread = *hi - *lo;
  out.sd = sample_std(acc);
  out.spread_ci = bootstrap_ci(acc, BootstrapStatistic::spread, resamples, confidence, seed);
  out.sd_ci = bootstrap_ci(acc, BootstrapStatistic::sample_std, resamples, confidence, seed);
  return out;
}

// ---- BUTTER -----------------------------------------------------------------------------

SeriesSummary summarize_series(const std::vector<double>& values) {
  SeriesSummary s;
  s.count = values.size();
  if (values.empty()) return s;
  for (const double x : values) s.finite += std::isfinite(x);
  const auto sorted = sorted_nan_last(values);
  s.min = sorted.front();
  s.max = sorted.back();
  s.mean = mean_of(values);
  s.std = sample_std(values);
  s.q1 = quantile_linear(sorted, 0.25);
  s.median = quantile_linear(sorted, 0.5);
  s.q3 = quantile_linear(sorted, 0.75);
  return s;
}

bool higher_is_better(std::string_view metric) {
  if (std::find(kMetricNames.begin(), kMetricNames.end(), metric) == kMetricNames.end())
    throw std::invalid_argument("test_extremum: unknown metric '" + std::string(metric) + "'");
  return metric == "accuracy" || metric == "cosine_similarity";
}

Extremum test_extremum(const StoredRun& run, std::string_view name) {
  const bool higher = higher_is_better(name);
  check_has_epochs(run, "test_extremum");
  const std::string m(name);
  std::vector<double> v;
  for (const auto& e : run.epochs) v.push_back(metric(e.test, m.c_str()));
  const std::size_t i = higher ? best_index(v, [](double x, double best) { return x > best; })
                               : best_index(v, [](double x, double best) { return x < best; });
  return {run.epochs[i].epoch, v[i]};
}

Extremum min_test_loss(const StoredRun& run) { return test_extremum(run, "loss"); }
Extremum max_test_accuracy(const StoredRun& run) { return test_extremum(run, "accuracy"); }

const ButterSummary::ExtremumSeries* ButterSummary::extremum(std::string_view name) const {
  for (const auto& e : extrema)
    if (e.name == name) return &e;
  return nullptr;
}

ButterSummary butter_summary(const std::vector<StoredRun>& runs) {
  check_one_setting(runs, "butter_summary");
  ButterSummary out;
  out.setting = runs.front().setting;
  std::size_t max_epochs = 0;
  for (const auto& r : runs) max_epochs = std::max(max_epochs, r.epochs.size());

  struct Series {
    std::string name;
    const MetricMap EpochRow::*split;  // null: seconds
    std::string metric;
  };
  std::vector<Series> series;
  for (const auto& [split_name, split] :
       {std::pair{"train", &EpochRow::train}, std::pair{"test", &EpochRow::test},
        std::pair{"validation", &EpochRow::validation}})
    for (const auto m : kMetricNames)
      series.push_back({std::string(split_name) + "_" + std::string(m), split, std::string(m)});
  series.push_back({"seconds", nullptr, {}});

  for (std::size_t i = 0; i < max_epochs; ++i) {
    for (const auto& s : series) {
      std::vector<double> values;
      for (const auto& r : runs) {
        if (i >= r.epochs.size()) continue;
        const EpochRow& e = r.epochs[i];
        if (!s.split) {
          values.push_back(e.seconds);
          continue;
        }
        const MetricMap& m = e.*(s.split);
        if (m.empty()) continue;  // no validation set in this run
        values.push_back(metric(m, s.metric.c_str()));
      }
      if (!values.empty())
        out.per_epoch.push_back(
            {static_cast<std::int64_t>(i) + 1, s.name, summarize_series(values)});
    }
  }

  for (const auto m : kMetricNames) {
    std::vector<double> epoch, value;
    for (const auto& r : runs) {
      if (r.epochs.empty()) continue;
      const Extremum x = test_extremum(r, m);
      epoch.push_back(static_cast<double>(x.epoch));
      value.push_back(x.value);
    }
    out.extrema.push_back(
        {std::string(higher_is_better(m) ? "max_test_" : "min_test_") + std::string(m),
         summarize_series(epoch), summarize_series(value)});
  }
  return out;
}

}  // namespace detdl::variance
