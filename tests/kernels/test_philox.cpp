// Philox-4x32-10 (kernels/common/philox.h) against the Random123 known answers in
// ../shared/vectors/philox4x32_10.tsv, the keying of a draw by (seed, stream, sub, index),
// and the distributions of kernels/common/random.h.
#include "kernels/common/philox.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/common/detmath.h"
#include "kernels/common/random.h"

namespace detdl {
namespace {

struct KnownAnswer {
  std::uint32_t ctr[4], key[2], out[4];
};

std::vector<KnownAnswer> load_known_answers() {
  const std::string path = DETDL_SHARED_DIR "/vectors/philox4x32_10.tsv";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path << " (the shared reference vectors)";
  std::vector<KnownAnswer> rows;
  std::string line;
  std::getline(in, line);  // header: counter, key, output
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream ss(line);
    KnownAnswer r;
    ss >> std::hex;
    for (auto& w : r.ctr) ss >> w;
    for (auto& w : r.key) ss >> w;
    for (auto& w : r.out) ss >> w;
    EXPECT_FALSE(ss.fail()) << path << ": bad row '" << line << "'";
    rows.push_back(r);
  }
  return rows;
}

TEST(Philox, KnownAnswers) {
  const auto rows = load_known_answers();
  ASSERT_GE(rows.size(), 3u) << "expected the Random123 known-answer rows";
  for (const auto& r : rows) {
    const Philox4 out =
        philox4x32_10(Philox4{{r.ctr[0], r.ctr[1], r.ctr[2], r.ctr[3]}}, r.key[0], r.key[1]);
    for (int w = 0; w < 4; ++w)
      EXPECT_EQ(out.v[w], r.out[w]) << "word " << w << ", ctr " << r.ctr[0];
  }
}

// Draw `index` is word index % 4 of the block with 64-bit counter index / 4, sub in word
// 2, stream in word 3, key = seed (low word first).
TEST(Philox, IndexToBlockAndWord) {
  const std::uint64_t seed = 0x0123456789abcdefull;
  for (std::uint64_t index :
       {0ull, 1ull, 2ull, 3ull, 4ull, 7ull, 1001ull, (1ull << 34) + 5, 0xfffffffffffffffeull}) {
    const std::uint64_t block = index / 4;
    const Philox4 b = philox4x32_10(
        Philox4{{static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32), 9u,
                 static_cast<std::uint32_t>(RandomStream::dropout)}},
        0x89abcdefu, 0x01234567u);
    EXPECT_EQ(philox_u32(seed, RandomStream::dropout, 9u, index), b.v[index % 4]) << index;
  }
}

TEST(Philox, UniformMapping) {
  for (std::uint64_t i = 0; i < 1000; ++i) {
    const std::uint32_t u = philox_u32(7, RandomStream::test, 0, i);
    EXPECT_EQ(philox_uniform(7, RandomStream::test, 0, i), static_cast<float>(u >> 8) * 0x1p-24f);
    EXPECT_EQ(philox_uniform_open0(7, RandomStream::test, 0, i),
              static_cast<float>((u >> 8) + 1u) * 0x1p-24f);
  }
}

TEST(Philox, UniformStatistics) {
  constexpr int n = 100000;
  double sum = 0, sq = 0;
  float lo = 1, hi = 0;
  for (int i = 0; i < n; ++i) {
    const float u = philox_uniform(42, RandomStream::test, 3, static_cast<std::uint64_t>(i));
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    lo = std::fmin(lo, u);
    hi = std::fmax(hi, u);
    sum += u;
    sq += static_cast<double>(u) * u;
  }
  const double mean = sum / n, var = sq / n - mean * mean;
  // Five standard errors: sd(mean) = sqrt(1/12/n) = 9.1e-4, sd(var) ~ 2.4e-4.
  EXPECT_NEAR(mean, 0.5, 5 * 9.2e-4);
  EXPECT_NEAR(var, 1.0 / 12, 5 * 2.4e-4);
  EXPECT_LT(lo, 1e-3f);
  EXPECT_GT(hi, 1 - 1e-3f);
}

TEST(Philox, NormalStatistics) {
  constexpr int n = 100000;
  double m1 = 0, m2 = 0, m3 = 0, m4 = 0;
  int within1 = 0;
  for (int i = 0; i < n; ++i) {
    const double z = philox_normal(42, RandomStream::test, 4, static_cast<std::uint64_t>(i));
    ASSERT_TRUE(std::isfinite(z));
    ASSERT_LE(std::fabs(z), 5.8);
    m1 += z;
    m2 += z * z;
    m3 += z * z * z;
    m4 += z * z * z * z;
    within1 += std::fabs(z) < 1.0;
  }
  m1 /= n, m2 /= n, m3 /= n, m4 /= n;
  // Five standard errors: sd(mean) = 1/sqrt(n), sd(E z^2) = sqrt(2/n), sd(E z^3) =
  // sqrt(15/n), sd(E z^4) = sqrt(96/n), sd(P(|z| < 1)) = sqrt(0.683 * 0.317 / n).
  EXPECT_NEAR(m1, 0.0, 5 * 3.2e-3);
  EXPECT_NEAR(m2, 1.0, 5 * 4.5e-3);
  EXPECT_NEAR(m3, 0.0, 5 * 1.3e-2);
  EXPECT_NEAR(m4, 3.0, 5 * 3.1e-2);
  EXPECT_NEAR(static_cast<double>(within1) / n, 0.682689, 5 * 1.5e-3);
}

// philox_normal is exactly the formula its header names (words 0 and 1 of block `index`).
TEST(Philox, NormalIsDocumentedFormula) {
  for (std::uint64_t index : {0ull, 1ull, 77ull, (1ull << 33) + 3}) {
    const Philox4 b = philox4x32_10(
        Philox4{{static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(index >> 32), 5u,
                 static_cast<std::uint32_t>(RandomStream::init)}},
        11u, 0u);
    const float u1 = static_cast<float>((b.v[0] >> 8) + 1u) * 0x1p-24f;
    const float u2 = static_cast<float>(b.v[1] >> 8) * 0x1p-24f;
    const float z = sqrtf(-2.0f * det_logf(u1)) * det_cosf(6.28318530717958648f * u2);
    const float got = philox_normal(11, RandomStream::init, 5, index);
    EXPECT_EQ(det_float_bits(got), det_float_bits(z)) << index;
    // The word-0 draw of the same block as a uniform: the (0, 1] variant of draw 4 * index.
    EXPECT_EQ(u1, philox_uniform_open0(11, RandomStream::init, 5, index * 4));
  }
}

TEST(Philox, UniformRange) {
  for (int i = 0; i < 20000; ++i) {
    const float u = philox_uniform_range(-3.0f, 5.0f, 1, RandomStream::test, 0, i);
    ASSERT_GE(u, -3.0f);
    ASSERT_LT(u, 5.0f);
    // Width 2 at 2^24 (ulp 2): a quarter of the draws round up to hi and are stepped down.
    const float w = philox_uniform_range(16777216.0f, 16777218.0f, 1, RandomStream::test, 0, i);
    ASSERT_GE(w, 16777216.0f);
    ASSERT_LT(w, 16777218.0f);
    const float z = philox_uniform_range(-1e-45f, 0.0f, 1, RandomStream::test, 0, i);
    ASSERT_LT(z, 0.0f);
    ASSERT_GE(z, -1e-45f);
  }
}

// Different seeds, streams, subs and index ranges give unrelated sequences.
TEST(Philox, IndependentKeys) {
  auto seq = [](std::uint64_t seed, RandomStream s, std::uint32_t sub, std::uint64_t start) {
    std::vector<std::uint32_t> v;
    for (std::uint64_t i = 0; i < 256; ++i) v.push_back(philox_u32(seed, s, sub, start + i));
    return v;
  };
  const std::vector<std::vector<std::uint32_t>> seqs = {
      seq(1, RandomStream::init, 0, 0),          seq(2, RandomStream::init, 0, 0),
      seq(1ull << 32, RandomStream::init, 0, 0), seq(1, RandomStream::dropout, 0, 0),
      seq(1, RandomStream::init, 1, 0),          seq(1, RandomStream::init, 0, 256),
      seq(1, RandomStream::init, 0, 1ull << 34)};
  for (std::size_t a = 0; a < seqs.size(); ++a)
    for (std::size_t b = a + 1; b < seqs.size(); ++b) {
      int equal = 0, corr = 0;
      for (int i = 0; i < 256; ++i) {
        equal += seqs[a][i] == seqs[b][i];
        corr += (seqs[a][i] >> 31) == (seqs[b][i] >> 31);  // top bits agree ~half the time
      }
      EXPECT_EQ(equal, 0) << a << " vs " << b;
      EXPECT_NEAR(corr, 128, 5 * 8) << a << " vs " << b;
    }
  // Normals too: sub 0 and sub 1 share nothing.
  int same = 0;
  for (int i = 0; i < 1000; ++i)
    same +=
        philox_normal(1, RandomStream::init, 0, i) == philox_normal(1, RandomStream::init, 1, i);
  EXPECT_EQ(same, 0);
}

}  // namespace
}  // namespace detdl
