// Dense-layer kernels on problems interleaved in SIMD lanes: up to kLanes independent
// problems of one shape (BUTTER's repetitions of one experiment) stored element by element
// side by side, element i of problem l at [i * kLanes + l]. One AVX2 vector then holds the
// same element of 8 problems, and each vector instruction is every problem's scalar step:
// nothing is reduced across lanes, so each lane's result is bit for bit what the canonical
// kernel gives its problem alone, and no lane of a tile is wasted however narrow the layer
// (a 7-wide product fills 7 of 16 lanes in the row-major GEMM; here all 8).
//
// Why: BUTTER's networks are a few dozen units wide (11 -> 23 -> 23 -> 7 at size 1024); a
// row-major GEMM of that shape spends more time packing and on edge tiles than on products
// (bench/RESULTS.md, "BUTTER's repetitions"). nets/butter_batched.cpp's by_lanes order runs
// the products and the element-wise work of a group of repetitions here.
//
// Layout of every array below: its logical shape with `lanes` floats per element, 8 (AVX2) or
// 16 (AVX-512F, where the CPU has it); lanes at or past the group's size hold whatever the
// caller put there (zeros from interleave()). Both widths give every problem the same bits.
#pragma once
#include <cstdint>

namespace detdl::cpu::lanes {

inline constexpr int kMaxLanes = 16;

// What dot() does with each output once its reduction is complete, in this order (every
// pointer optional; the bits are those of the separate passes: a float kept in a register is
// the float stored):
//   bias (J):               c = c + bias[j]             (ops::linear's bias add)
//   relu_grad_of (I, J):    c = z > 0 ? c : +0.0f       (relu's backward at its input z)
//   relu (I, J):            relu = c > 0 ? c : +0.0f    (relu's forward; c keeps its value)
// relu and relu_grad_of are laid out as c (c_i, c_j). A dense layer's forward takes bias and
// relu (z and a = relu(z) in one pass), its data gradient relu_grad_of (dL/dz of the layer
// below without writing dL/da first).
struct Epilogue {
  const float* bias = nullptr;
  const float* relu_grad_of = nullptr;
  float* relu = nullptr;
};

struct Kernels {
  int lanes;  // floats per element: 8 or 16

  // dot()'s products over r in [0, R) for R <= kChunkProducts (one chain per output).
  void (*dot_chunk)(std::int64_t I, std::int64_t J, std::int64_t R,  //
                    const float* a, std::int64_t a_i, std::int64_t a_r, const float* b,
                    std::int64_t b_j, std::int64_t b_r, float* c, std::int64_t c_i,
                    std::int64_t c_j, const Epilogue* ep);

  // s (J) = the canonical sum over n of x (N, J)'s column j (chunks of kChunkValues terms):
  // reduce.h's column_sums, lane by lane (a dense layer's bias gradient).
  void (*column_sums)(std::int64_t N, std::int64_t J, const float* x, float* s);
};

// The widest kernels this CPU runs (AVX-512F's where it has it and they are allowed).
const Kernels& kernels();
const Kernels& kernels_avx2();
const Kernels& kernels_avx512();  // call only where avx512_available()
bool avx512_available();
// Test hook: false makes kernels() the AVX2 ones on a CPU with AVX-512F. Default true.
void set_avx512_allowed(bool on);

// c(i, j) = the canonical dot over r in [0, R) of a(i, r) * b(j, r) (chunks of
// kChunkProducts terms, each one fmaf chain from +0.0f in r order, the chunks combined by the
// canonical tree), for i < I, j < J, with k's kernels. Element (i, r) of a is at a + (i * a_i
// + r * a_r) * k.lanes, (j, r) of b at b + (j * b_j + r * b_r) * k.lanes, (i, j) of c at
// c + (i * c_i + j * c_j) * k.lanes. A dense layer's three products:
//   forward       y (N, O) = x (N, K) w^T:  I = N, J = O, R = K; a = x (K, 1), b = w (K, 1)
//   weight grad  dw (O, K) = dy^T x:        I = O, J = K, R = N; a = dy (1, O), b = x (1, K)
//   data grad    dx (N, K) = dy w:          I = N, J = K, R = O; a = dy (O, 1), b = w (1, K)
// ep: the epilogue applied to every output (nullptr: none).
void dot(const Kernels& k, std::int64_t I, std::int64_t J, std::int64_t R,  //
         const float* a, std::int64_t a_i, std::int64_t a_r, const float* b, std::int64_t b_j,
         std::int64_t b_r, float* c, std::int64_t c_i, std::int64_t c_j,
         const Epilogue* ep = nullptr);

// dst (n) = src[l][i] in lane l for l < count (count <= lanes), +0.0f in the other lanes.
void interleave(int lanes, std::int64_t n, const float* const* src, std::int64_t count, float* dst);
// dst (rows, n): row i of problem l is the row order[l][i] of src[l] (rows of n floats: each
// repetition's training set in its own shuffled order), for l < count; +0.0f in the other
// lanes. interleave() of each lane's gathered rows, without the gathered copies.
void gather_rows(int lanes, std::int64_t rows, std::int64_t n, const float* const* src,
                 const std::int64_t* const* order, std::int64_t count, float* dst);
// dst[l][i] = src (n)'s lane l, for l < count.
void deinterleave(int lanes, std::int64_t n, const float* src, std::int64_t count,
                  float* const* dst);

}  // namespace detdl::cpu::lanes
