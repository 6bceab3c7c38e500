// emulated_sgemm (kernels/cpu/emulated_gemm.h), every alternative forced through an explicit
// plan: (1) bit for bit against the plan's order written as plain loops, (2) within the
// float64 bound gamma_K * sum |a_k b_k|, (3) the same bits on 1, 2 and 3 threads, (4) the
// split plans change bits against the canonical sgemm (the family is not inert), and
// (5) the draw -> plan mapping reaches every alternative.
#include "kernels/cpu/emulated_gemm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"

namespace detdl::cpu {
namespace {

using i64 = std::int64_t;
using Vec = std::vector<float>;

std::uint32_t bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

// A float in [-1, 1) with a full 23-bit fraction, so the order of a sum shows in the bits.
float gen(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ull + i;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(static_cast<std::int32_t>(z >> 40) - (1 << 23)) * 0x1p-23f;
}

// gamma_n = n u / (1 - n u), u = 2^-24: the bound on any order's rounding of n terms.
double gamma(i64 n) {
  const double u = 0x1p-24;
  return n * u / (1.0 - n * u);
}

// op(A) (M, K), op(B) (K, N) with padded leading dimensions.
struct Problem {
  i64 M, N, K;
  bool ta, tb;
  i64 lda, ldb, ldc;
  Vec A, B;
  Problem(i64 m, i64 n, i64 k, bool trans_a, bool trans_b, std::uint64_t seed)
      : M(m), N(n), K(k), ta(trans_a), tb(trans_b) {
    lda = (ta ? M : K) + 3;
    ldb = (tb ? K : N) + 2;
    ldc = N + 1;
    A.resize(static_cast<std::size_t>((ta ? K : M) * lda + 1));
    B.resize(static_cast<std::size_t>((tb ? N : K) * ldb + 1));
    for (std::size_t i = 0; i < A.size(); ++i) A[i] = gen(seed, i);
    for (std::size_t i = 0; i < B.size(); ++i) B[i] = gen(seed + 1000, i);
  }
  float a(i64 m, i64 k) const { return ta ? A[k * lda + m] : A[m * lda + k]; }
  float b(i64 k, i64 n) const { return tb ? B[n * ldb + k] : B[k * ldb + n]; }
  Vec run(const EmulatedGemmPlan& p) const {
    Vec C(static_cast<std::size_t>(M * ldc), 7.0f);
    emulated_sgemm(p, ta, tb, M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc);
    return C;
  }
  Vec canonical() const {
    Vec C(static_cast<std::size_t>(M * ldc), 7.0f);
    sgemm(Level::portable, ta, tb, M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc);
    return C;
  }
};

// The plan's order for one element, as plain loops: chains per slice, then the combine.
float plan_element(const Problem& pr, const EmulatedGemmPlan& p, i64 m, i64 n) {
  Vec part;
  for (i64 j = 0; j < p.slices(); ++j) {
    float acc = 0.0f;
    for (i64 k = p.cuts[j]; k < p.cuts[j + 1]; ++k) acc = std::fmaf(pr.a(m, k), pr.b(k, n), acc);
    part.push_back(acc);
  }
  if (part.size() == 1) return part[0];
  if (p.combine == SplitCombine::arrival) {
    float c = 0.0f;
    for (i64 j = 0; j < p.slices(); ++j) c = c + part[p.order[j]];
    return c;
  }
  while (part.size() > 1) {  // level by level, odd last moving up
    Vec next;
    for (std::size_t j = 0; j + 1 < part.size(); j += 2) next.push_back(part[j] + part[j + 1]);
    if (part.size() % 2) next.push_back(part.back());
    part = next;
  }
  return part[0];
}

void use_threads(int t) {
  if (t != num_threads()) set_num_threads(t);
}
struct ThreadsGuard {
  ~ThreadsGuard() { use_threads(1); }
};

// Every plan the catalogue has for K: each split factor, both combines, the identity order
// and a reversed one.
std::vector<EmulatedGemmPlan> all_plans(i64 K) {
  std::vector<EmulatedGemmPlan> out;
  for (int s : kSplitFactors)
    for (SplitCombine c : {SplitCombine::arrival, SplitCombine::tree}) {
      out.push_back(split_k_plan(K, s, c));
      EmulatedGemmPlan p = split_k_plan(K, s, c);
      std::reverse(p.order.begin(), p.order.end());
      out.push_back(p);
    }
  return out;
}

std::string name(const Problem& pr, const EmulatedGemmPlan& p) {
  return "M=" + std::to_string(pr.M) + " N=" + std::to_string(pr.N) + " K=" + std::to_string(pr.K) +
         " ta=" + std::to_string(pr.ta) + " tb=" + std::to_string(pr.tb) +
         " slices=" + std::to_string(p.slices()) +
         (p.combine == SplitCombine::tree ? " tree" : " arrival") +
         " first=" + std::to_string(p.order[0]);
}

struct Shape {
  i64 M, N, K;
};
const Shape kShapes[] = {{1, 1, 1},      {7, 33, 5}, {17, 5, 16},   {13, 40, 100},
                         {64, 120, 400}, {6, 16, 3}, {30, 300, 37}, {5, 9, 5000}};

TEST(EmulatedGemm, EveryPlanIsItsOrderAndWithinTheFloat64Bound) {
  std::map<std::string, double> worst;  // per alternative: max |error| / (gamma_K sum |a b|)
  for (const Shape& sh : kShapes)
    for (int t = 0; t < 4; ++t) {
      const Problem pr(sh.M, sh.N, sh.K, t & 1, t & 2, 11 + t);
      for (const EmulatedGemmPlan& p : all_plans(sh.K)) {
        const Vec C = pr.run(p);
        for (i64 m = 0; m < pr.M; ++m)
          for (i64 n = 0; n < pr.N; ++n) {
            const float got = C[m * pr.ldc + n];
            ASSERT_EQ(bits(got), bits(plan_element(pr, p, m, n)))
                << name(pr, p) << " at (" << m << "," << n << ")";
            double exact = 0.0, mag = 0.0;
            for (i64 k = 0; k < pr.K; ++k) {
              const double v = static_cast<double>(pr.a(m, k)) * pr.b(k, n);
              exact += v;
              mag += std::fabs(v);
            }
            const double bound = gamma(pr.K) * mag;
            ASSERT_LE(std::fabs(got - exact), bound) << name(pr, p);
            const std::string alt = "split " +
                                    std::to_string(p.slices() == pr.K ? -1 : p.slices()) +
                                    (p.combine == SplitCombine::tree ? " tree" : " arrival");
            if (bound > 0) worst[alt] = std::max(worst[alt], std::fabs(got - exact) / bound);
          }
        for (i64 m = 0; m < pr.M; ++m)  // padding past N untouched
          ASSERT_EQ(C[m * pr.ldc + pr.N], 7.0f) << name(pr, p);
      }
    }
  // "split -1": capped at K (one term per slice).
  for (const auto& [alt, w] : worst) std::printf("%-16s max error / bound %.4f\n", alt.c_str(), w);
}

TEST(EmulatedGemm, SameBitsOnOneTwoThreeThreads) {
  ThreadsGuard guard;
  for (const Shape& sh :
       {Shape{64, 120, 400}, Shape{150, 700, 16}, Shape{16, 150, 6400}, Shape{7, 3, 50}})
    for (int t = 0; t < 4; ++t) {
      const Problem pr(sh.M, sh.N, sh.K, t & 1, t & 2, 5 + t);
      for (const EmulatedGemmPlan& p : all_plans(sh.K)) {
        use_threads(1);
        const Vec one = pr.run(p);
        for (int threads : {2, 3}) {
          use_threads(threads);
          const Vec other = pr.run(p);
          for (std::size_t i = 0; i < one.size(); ++i)
            ASSERT_EQ(bits(one[i]), bits(other[i])) << name(pr, p) << " threads=" << threads;
        }
      }
    }
}

TEST(EmulatedGemm, OneSliceIsTheCanonicalOrderUpTo4096) {
  for (int t = 0; t < 4; ++t) {
    const Problem pr(13, 40, 4096, t & 1, t & 2, 3);
    const Vec a = pr.run(split_k_plan(pr.K, 1, SplitCombine::arrival)), b = pr.canonical();
    for (std::size_t i = 0; i < a.size(); ++i) ASSERT_EQ(bits(a[i]), bits(b[i])) << i;
  }
}

TEST(EmulatedGemm, SplitPlansChangeBits) {
  const Problem pr(16, 32, 400, false, true, 9);
  const Vec canon = pr.canonical();
  std::set<std::vector<std::uint32_t>> distinct;
  for (const EmulatedGemmPlan& p : all_plans(pr.K)) {
    const Vec C = pr.run(p);
    std::vector<std::uint32_t> b;
    for (float v : C) b.push_back(bits(v));
    distinct.insert(b);
    if (p.slices() > 1) {
      i64 differ = 0;
      for (std::size_t i = 0; i < C.size(); ++i) differ += bits(C[i]) != bits(canon[i]);
      EXPECT_GT(differ, 0) << name(pr, p) << " gives the canonical bits everywhere";
    }
  }
  EXPECT_GE(distinct.size(), 10u) << "plans should give many different results";
}

TEST(EmulatedGemm, ChainInPiecesIsOneChain) {
  const Problem pr(11, 37, 300, true, false, 4);
  Vec whole(static_cast<std::size_t>(pr.M * pr.ldc)), pieces = whole;
  chain_sgemm(pr.ta, pr.tb, pr.M, pr.N, pr.K, pr.A.data(), pr.lda, pr.B.data(), pr.ldb, false,
              whole.data(), pr.ldc);
  for (i64 k0 = 0; k0 < pr.K; k0 += 70)  // A (K, M): rows k0.. start at A + k0*lda
    chain_sgemm(pr.ta, pr.tb, pr.M, pr.N, std::min<i64>(70, pr.K - k0), pr.A.data() + k0 * pr.lda,
                pr.lda, pr.B.data() + k0 * pr.ldb, pr.ldb, k0 > 0, pieces.data(), pr.ldc);
  const EmulatedGemmPlan one = split_k_plan(pr.K, 1, SplitCombine::tree);
  for (i64 m = 0; m < pr.M; ++m)
    for (i64 n = 0; n < pr.N; ++n) {
      ASSERT_EQ(bits(whole[m * pr.ldc + n]), bits(pieces[m * pr.ldc + n]));
      ASSERT_EQ(bits(whole[m * pr.ldc + n]), bits(plan_element(pr, one, m, n)));
    }
}

TEST(EmulatedGemm, CombinePartialsOrders) {
  const i64 n = 1000;
  for (i64 count : {1, 2, 3, 5, 8}) {
    std::vector<Vec> parts(count, Vec(n));
    for (i64 j = 0; j < count; ++j)
      for (i64 i = 0; i < n; ++i) parts[j][i] = gen(77 + j, i) * (j % 2 ? 1e3f : 1.0f);
    std::vector<std::int32_t> order(count);
    for (i64 j = 0; j < count; ++j) order[j] = static_cast<std::int32_t>(count - 1 - j);
    for (SplitCombine c : {SplitCombine::arrival, SplitCombine::tree}) {
      std::vector<Vec> work = parts;
      std::vector<float*> ptr;
      for (Vec& v : work) ptr.push_back(v.data());
      Vec out(n);
      combine_partials(c, order.data(), count, ptr.data(), n, out.data());
      for (i64 i = 0; i < n; ++i) {
        Vec level;
        for (i64 j = 0; j < count; ++j) level.push_back(parts[j][i]);
        float want = 0.0f;
        if (c == SplitCombine::arrival) {
          for (i64 j = 0; j < count; ++j) want = want + level[order[j]];
        } else {
          while (level.size() > 1) {
            Vec next;
            for (std::size_t j = 0; j + 1 < level.size(); j += 2)
              next.push_back(level[j] + level[j + 1]);
            if (level.size() % 2) next.push_back(level.back());
            level = next;
          }
          want = level[0];
        }
        ASSERT_EQ(bits(out[i]), bits(want)) << "count=" << count << " i=" << i;
      }
    }
  }
}

TEST(EmulatedGemm, DrawsCoverEveryAlternative) {
  std::set<int> splits;
  std::set<int> combines;
  std::set<std::vector<std::int32_t>> orders;
  for (std::uint64_t seed = 0; seed < 300; ++seed) {
    const ImplDraw d{seed, ImplFamily::matmul, static_cast<std::uint32_t>(seed % 7), 3};
    const EmulatedGemmPlan p = emulated_gemm_plan(d, 64);
    ASSERT_EQ(p.cuts.back(), 64);
    splits.insert(static_cast<int>(p.slices()));
    combines.insert(static_cast<int>(p.combine));
    if (p.slices() == 4) orders.insert(p.order);
    // Same draw, same plan; the split is fixed per place while the arrival order is per step.
    const EmulatedGemmPlan again = emulated_gemm_plan(d, 64);
    ASSERT_EQ(again.cuts, p.cuts);
    ASSERT_EQ(again.order, p.order);
    ImplDraw next = d;
    next.step += 1;
    ASSERT_EQ(emulated_gemm_plan(next, 64).cuts, p.cuts);
  }
  EXPECT_EQ(splits, (std::set<int>{1, 2, 3, 4, 8, 16}));
  EXPECT_EQ(combines.size(), 2u);
  EXPECT_GE(orders.size(), 12u) << "arrival orders of 4 slices should vary";
  // Capped at K: K = 3 never has more than 3 slices, each at least one term.
  for (std::uint64_t seed = 0; seed < 100; ++seed) {
    const EmulatedGemmPlan p = emulated_gemm_plan(ImplDraw{seed, ImplFamily::matmul, 0, 0}, 3);
    ASSERT_LE(p.slices(), 3);
    for (i64 j = 0; j < p.slices(); ++j) ASSERT_LT(p.cuts[j], p.cuts[j + 1]);
  }
}

}  // namespace
}  // namespace detdl::cpu
