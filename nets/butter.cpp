#include "nets/butter.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

#include "nets/blocks.h"

namespace detdl::nets {

namespace {

constexpr std::array<std::pair<ButterShape, std::string_view>, 8> kShapeNames{{
    {ButterShape::rectangle, "rectangle"},
    {ButterShape::trapezoid, "trapezoid"},
    {ButterShape::exponential, "exponential"},
    {ButterShape::wide_first_2x, "wide_first_2x"},
    {ButterShape::wide_first_4x, "wide_first_4x"},
    {ButterShape::wide_first_8x, "wide_first_8x"},
    {ButterShape::wide_first_16x, "wide_first_16x"},
    {ButterShape::rectangle_residual, "rectangle_residual"},
}};

// Python's round(): half to even (the default rounding mode of std::nearbyint).
std::int64_t round_half_even(double v) { return static_cast<std::int64_t>(std::nearbyint(v)); }

std::int64_t wide_first_factor(ButterShape s) {
  switch (s) {
    case ButterShape::wide_first_2x: return 2;
    case ButterShape::wide_first_4x: return 4;
    case ButterShape::wide_first_8x: return 8;
    case ButterShape::wide_first_16x: return 16;
    default: return 0;
  }
}

void require_positive(std::int64_t v, const char* fn, const char* name) {
  if (v < 1)
    throw std::invalid_argument(std::string(fn) + ": " + name + " must be >= 1, got " +
                                std::to_string(v));
}

constexpr std::int64_t kSearchEnd = std::int64_t{1} << 30;  // w0 in [1, 2^30)

}  // namespace

std::string_view butter_shape_name(ButterShape s) {
  for (const auto& [shape, name] : kShapeNames)
    if (shape == s) return name;
  return "unknown";
}

std::optional<ButterShape> parse_butter_shape(std::string_view name) {
  for (const auto& [shape, n] : kShapeNames)
    if (n == name) return shape;
  return std::nullopt;
}

std::vector<std::int64_t> butter_widths(ButterShape s, std::int64_t w0, std::int64_t depth,
                                        std::int64_t n_out) {
  require_positive(w0, "butter_widths", "w0");
  require_positive(n_out, "butter_widths", "n_out");
  if (depth < 2)
    throw std::invalid_argument(
        "butter_widths: depth must be >= 2 (it counts the output layer), got " +
        std::to_string(depth));
  std::vector<std::int64_t> w(static_cast<std::size_t>(depth));
  const std::size_t last = w.size() - 1;
  switch (s) {
    case ButterShape::rectangle:
    case ButterShape::rectangle_residual: std::fill(w.begin(), w.end(), w0); break;
    case ButterShape::trapezoid: {
      const double b = static_cast<double>(w0 - n_out) / static_cast<double>(depth - 1);
      for (std::size_t k = 0; k < w.size(); ++k)
        w[k] = round_half_even(static_cast<double>(w0) - b * static_cast<double>(k));
      break;
    }
    case ButterShape::exponential: {
      const double b = std::exp(std::log(static_cast<double>(n_out) / static_cast<double>(w0)) /
                                static_cast<double>(depth - 1));
      for (std::size_t k = 0; k < w.size(); ++k)
        w[k] = std::max(
            n_out, round_half_even(static_cast<double>(w0) * std::pow(b, static_cast<double>(k))));
      break;
    }
    default: {  // wide_first_Mx: [w0] + [max(1, round(w0 / M))] * (depth - 2) + [n_out]
      const std::int64_t m = wide_first_factor(s);
      if (m == 0) throw std::invalid_argument("butter_widths: unknown shape");
      const std::int64_t narrow = std::max<std::int64_t>(
          1, round_half_even(static_cast<double>(w0) / static_cast<double>(m)));
      std::fill(w.begin(), w.end(), narrow);
      w[0] = w0;
      break;
    }
  }
  // The generators already end at n_out (up to rounding of the float formulas); the last
  // layer is the output layer by definition.
  w[last] = n_out;
  return w;
}

std::int64_t butter_param_count(const std::vector<std::int64_t>& widths, std::int64_t n_in) {
  constexpr __int128 kMax = std::numeric_limits<std::int64_t>::max();
  __int128 total = 0;
  __int128 fan_in = n_in;
  for (const std::int64_t units : widths) {
    total += (fan_in + 1) * static_cast<__int128>(units);  // < 2^94 per layer: exact in __int128
    if (total >= kMax) return std::numeric_limits<std::int64_t>::max();
    fan_in = units;
  }
  return static_cast<std::int64_t>(total);
}

ButterPlan butter_plan(ButterShape s, std::int64_t size, std::int64_t depth, std::int64_t n_in,
                       std::int64_t n_out) {
  require_positive(size, "butter_plan", "size");
  require_positive(n_in, "butter_plan", "n_in");
  require_positive(n_out, "butter_plan", "n_out");
  if (depth < 2)
    throw std::invalid_argument(
        "butter_plan: depth must be >= 2 (it counts the output layer), got " +
        std::to_string(depth));
  ButterPlan best;
  best.size = size;
  std::int64_t best_distance = std::numeric_limits<std::int64_t>::max();
  std::int64_t lo = 1, hi = kSearchEnd;
  while (lo < hi) {
    const std::int64_t mid = (lo + hi) / 2;
    std::vector<std::int64_t> widths = butter_widths(s, mid, depth, n_out);
    const std::int64_t params = butter_param_count(widths, n_in);
    const std::int64_t distance = params >= size ? params - size : size - params;
    if (distance < best_distance) {  // strict: on a tie the first evaluated w0 stays
      best_distance = distance;
      best.widths = std::move(widths);
      best.params = params;
    }
    if (params < size) {
      lo = mid + 1;
    } else if (params > size) {
      hi = mid;
    } else {
      break;
    }
  }
  // More than 20% away is rejected: 5 |params - size| > size, in exact integers.
  best.conformant = 5 * static_cast<__int128>(best_distance) <= size;
  return best;
}

std::shared_ptr<Module> make_butter_mlp(ButterShape s, const ButterPlan& plan, std::int64_t n_in,
                                        bool sigmoid_output) {
  const std::string shape(butter_shape_name(s));
  require_positive(n_in, "make_butter_mlp", "n_in");
  if (plan.widths.size() < 2 || butter_param_count(plan.widths, n_in) != plan.params)
    throw std::invalid_argument("make_butter_mlp: the plan (" + std::to_string(plan.params) +
                                " parameters) does not fit n_in = " + std::to_string(n_in));
  const bool residual = s == ButterShape::rectangle_residual;
  const std::size_t output = plan.widths.size() - 1;

  auto m = std::make_shared<Sequential>();
  std::int64_t fan_in = n_in;
  for (std::size_t d = 0; d < output; ++d) {
    const std::int64_t units = plan.widths[d];
    if (residual && d >= 1) {
      if (units != fan_in)
        throw std::invalid_argument(
            "make_butter_mlp: rectangle_residual needs equal hidden widths, layer " +
            std::to_string(d) + " has " + std::to_string(units) + " after " +
            std::to_string(fan_in));
      m->emplace<ResidualDense>(units);  // relu(W h + b) + h
    } else {
      m->emplace<Linear>(fan_in, units);
      m->emplace<Act>(Activation::relu);
    }
    fan_in = units;
  }
  m->emplace<Linear>(fan_in, plan.widths[output]);
  if (sigmoid_output) m->emplace<Act>(Activation::sigmoid, 0.0f, /*output=*/true);
  return m;
}

}  // namespace detdl::nets
