// The canonical reduction (kernels/common/reduction.h) against answers computed outside
// the project (../shared/vectors/canonical.tsv, exact rational arithmetic), and ChunkTree's
// streaming merge against the plain level-by-level tree of docs/determinism.md.
#include "kernels/common/reduction.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>
#include "tests/kernels/reference.h"

namespace detdl {
namespace {

std::uint32_t bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

// make_canonical.py's generator: splitmix64's finaliser of seed * golden + i, top 24 bits
// as a float in [-1, 1): x = (z >> 40) / 2^23 - 1 (exact in float).
float gen(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ull + i;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  const std::int32_t m = static_cast<std::int32_t>(z >> 40) - (1 << 23);
  return static_cast<float>(m) * 0x1p-23f;
}

std::vector<float> gen_vector(std::uint64_t seed, std::int64_t n) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[i] = gen(seed, static_cast<std::uint64_t>(i));
  return v;
}

// The reference: pairs (0,1), (2,3), ... level by level; an odd last node moves up.
using detdl::reference::level_tree;

// The canonical order as plain loops: chunk partials, then the level tree.
float reference_sum(const std::vector<float>& x) {
  std::vector<float> parts;
  for (std::size_t s = 0; s < x.size(); s += kChunkValues) {
    float p = 0.0f;
    for (std::size_t k = s; k < x.size() && k < s + kChunkValues; ++k) p = p + x[k];
    parts.push_back(p);
  }
  return level_tree(parts);
}

float reference_dot(const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<float> parts;
  for (std::size_t s = 0; s < a.size(); s += kChunkProducts) {
    float p = 0.0f;
    for (std::size_t k = s; k < a.size() && k < s + kChunkProducts; ++k)
      p = std::fmaf(a[k], b[k], p);
    parts.push_back(p);
  }
  return level_tree(parts);
}

TEST(Reduction, GeneratorMatchesScript) {
  // Spot values of make_canonical.py's gen(1, i): canonical.tsv's first sum row is x_0.
  EXPECT_EQ(bits(gen(1, 0)), 0x3f444150u);
  for (std::uint64_t i = 0; i < 10000; ++i) {
    const float x = gen(3, i);
    ASSERT_GE(x, -1.0f);
    ASSERT_LT(x, 1.0f);
  }
}

TEST(Reduction, CanonicalVectors) {
  const std::string path = DETDL_SHARED_DIR "/vectors/canonical.tsv";
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << "cannot open " << path << " (the shared reference vectors)";
  std::string line;
  std::getline(in, line);  // header: kind n seed_a seed_b result_bits
  int rows = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream ss(line);
    std::string kind, seed_b;
    std::int64_t n;
    std::uint64_t seed_a;
    std::uint32_t want;
    ss >> kind >> n >> seed_a >> seed_b >> std::hex >> want;
    ASSERT_FALSE(ss.fail()) << path << ": bad row '" << line << "'";
    const auto a = gen_vector(seed_a, n);
    if (kind == "sum") {
      EXPECT_EQ(bits(canonical_sum(a.data(), n)), want) << "sum n = " << n;
      EXPECT_EQ(bits(reference_sum(a)), want) << "reference sum n = " << n;
    } else {
      ASSERT_EQ(kind, "dot") << path;
      const auto b = gen_vector(std::stoull(seed_b), n);
      EXPECT_EQ(bits(canonical_dot(a.data(), 1, b.data(), 1, n)), want) << "dot n = " << n;
      EXPECT_EQ(bits(reference_dot(a, b)), want) << "reference dot n = " << n;
    }
    ++rows;
  }
  EXPECT_GE(rows, 40) << path;
}

// The streaming binary-counter merge equals the level-by-level tree for every count of
// chunk partials; partials of mixed magnitude make any other pairing round differently.
TEST(Reduction, ChunkTreeMatchesLevelTree) {
  for (int count = 0; count <= 70; ++count) {
    std::vector<float> parts;
    for (int j = 0; j < count; ++j)
      parts.push_back(gen(17, static_cast<std::uint64_t>(j)) * std::ldexp(1.0f, (j * 7) % 23 - 11));
    ChunkTree tree;
    for (float p : parts) tree.push(p);
    EXPECT_EQ(bits(tree.root()), bits(level_tree(parts))) << count << " chunks";
  }
}

TEST(Reduction, EmptyIsPositiveZero) {
  EXPECT_EQ(bits(canonical_sum(nullptr, 0)), 0u);
  EXPECT_EQ(bits(canonical_dot(nullptr, 1, nullptr, 1, 0)), 0u);
  EXPECT_EQ(bits(canonical_sum_of(0, [](std::int64_t) { return 1.0f; })), 0u);
}

TEST(Reduction, StridedAndFunctorSums) {
  for (std::int64_t n : {1, 2, 255, 256, 257, 1000, 4097, 20000}) {
    for (std::int64_t stride : {1, 3, 7}) {
      const auto x = gen_vector(5, n * stride);
      std::vector<float> gathered;
      for (std::int64_t i = 0; i < n; ++i) gathered.push_back(x[i * stride]);
      const float want = reference_sum(gathered);
      EXPECT_EQ(bits(canonical_sum(x.data(), n, stride)), bits(want)) << n << " stride " << stride;
      EXPECT_EQ(bits(canonical_sum_of(n, [&](std::int64_t k) { return x[k * stride]; })),
                bits(want))
          << n << " stride " << stride;
      // Strided dot against the gathered plain loop.
      const auto y = gen_vector(6, n * stride);
      std::vector<float> ga, gb;
      for (std::int64_t i = 0; i < n; ++i) {
        ga.push_back(x[i * stride]);
        gb.push_back(y[(n - 1 - i) * stride]);
      }
      EXPECT_EQ(bits(canonical_dot(x.data(), stride, y.data() + (n - 1) * stride, -stride, n)),
                bits(reference_dot(ga, gb)))
          << n << " stride " << stride;
    }
  }
}

// Terms computed on the fly (as batch norm's (x - mean)^2): the functor's value is added,
// not re-associated.
TEST(Reduction, SumOfSquaredDeviations) {
  const auto x = gen_vector(9, 3000);
  const float mean = 0.125f;
  std::vector<float> terms;
  for (float v : x) terms.push_back((v - mean) * (v - mean));
  const float got =
      canonical_sum_of(3000, [&](std::int64_t k) { return (x[k] - mean) * (x[k] - mean); });
  EXPECT_EQ(bits(got), bits(reference_sum(terms)));
  double exact = 0;
  for (float t : terms) exact += t;
  EXPECT_NEAR(got, exact, (kChunkValues + 4) * 0x1p-24 * exact);  // chunk + tree depth roundings
}

// Float64 sanity of the canonical sum: error within the pairwise bound.
TEST(Reduction, CloseToFloat64) {
  for (std::int64_t n : {1000, 65543, 131075}) {
    const auto x = gen_vector(1, n);
    const auto y = gen_vector(2, n);
    double s = 0, sa = 0, d = 0, da = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      s += x[i];
      sa += std::fabs(x[i]);
      d += static_cast<double>(x[i]) * y[i];
      da += std::fabs(static_cast<double>(x[i]) * y[i]);
    }
    const double eps = 0x1p-24;
    EXPECT_NEAR(canonical_sum(x.data(), n), s, (kChunkValues + 20) * eps * sa) << n;
    EXPECT_NEAR(canonical_dot(x.data(), 1, y.data(), 1, n), d, (kChunkProducts + 20) * eps * da)
        << n;
  }
}

}  // namespace
}  // namespace detdl
