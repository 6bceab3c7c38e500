// CPU convolution: detdl's three passes (forward, data gradient, weight gradient) at
// `portable` and `fast` against oneDNN (Debian's libdnnl 2.6, f32, direct algorithm), same
// shapes, same thread counts, in the same run. Results and the machine: bench/RESULTS.md
// (bench/peers.sh runs this and writes the table).
//   build-cpu/bench/bench_conv --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
//   build-cpu/bench/bench_conv --threads=1,2,4,8 --benchmark_filter=resnet20_s1_16   (scaling)
//   build-cpu/bench/bench_conv --batch=8      (every shape with 8 samples: operands in cache)
//
// Rows are named conv/<shape>/<pass>/<impl>/t<threads>, pass fwd | bwd_data | bwd_weight,
// impl detdl_portable | detdl_fast | onednn | onednn_reorders | onednn_nchw:
//   onednn       the primitive picks its own layouts (format_tag::any: blocked, nChw8c on
//                AVX2, nChw16c on AVX-512), which is what a framework keeps its tensors
//                in; the reorders from and to detdl's NCHW / OIHW run once, outside the
//                timed loop. Only the primitive's execution is timed.
//   onednn_reorders  the same primitive with those reorders timed too: what a caller whose
//                tensors are NCHW / OIHW pays per call (as detdl's callers, and PyTorch's CPU
//                convolutions on NCHW tensors).
//   onednn_nchw  the primitive is forced onto plain NCHW / OIHW (no reorders at all).
// No bias in any pass (detdl adds it after the root, oneDNN fuses it: either way a small
// fraction of the time).
//
// Threads: detdl's pool via cpu::set_num_threads; Debian's libdnnl is built with OpenMP
// (DNNL_CPU_RUNTIME OMP, libgomp), so omp_set_num_threads(T) before a oneDNN primitive is
// created (its JIT kernels block the work for the thread count seen at creation).
//
// After timing, every row's output is compared, element by element, with the other
// library's (detdl rows against oneDNN with its own layouts, oneDNN rows against detdl
// portable): |a - b| <= 1e-3 * (|b| + mean |b|) or the row is an error. Built without
// oneDNN, detdl rows are checked at 64 sampled outputs against a float64 loop instead.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/common/level.h"
#include "kernels/common/shapes.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/parallel.h"
#if DETDL_HAVE_DNNL
#include <omp.h>

#include <dnnl.hpp>
#endif

using namespace detdl;
using i64 = std::int64_t;

namespace {

struct NamedShape {
  const char* name;
  Conv2dShape s;
};

// The convolutions of LeNet-5 / LeNet-1 on MNIST (5x5 'same', batch 128) and ResNet-20 on
// CIFAR (3x3 'same', batch 128; Keras 'same' with stride 2 pads 0 before and 1 after).
std::vector<NamedShape> shapes() {
  return {
      {"lenet5_c1", conv2d_shape_same(128, 1, 28, 28, 6, 5, 5, 1)},
      {"lenet5_c2", conv2d_shape_same(128, 6, 14, 14, 16, 5, 5, 1)},
      {"lenet1_c1", conv2d_shape_same(128, 1, 28, 28, 4, 5, 5, 1)},
      {"lenet1_c2", conv2d_shape_same(128, 4, 14, 14, 12, 5, 5, 1)},
      {"resnet20_stem", conv2d_shape_same(128, 3, 32, 32, 16, 3, 3, 1)},
      {"resnet20_s1_16", conv2d_shape_same(128, 16, 32, 32, 16, 3, 3, 1)},
      {"resnet20_s1_32", conv2d_shape_same(128, 32, 16, 16, 32, 3, 3, 1)},
      {"resnet20_s1_64", conv2d_shape_same(128, 64, 8, 8, 64, 3, 3, 1)},
      {"resnet20_s2_16to32", conv2d_shape_same(128, 16, 32, 32, 32, 3, 3, 2)},
      {"resnet20_s2_32to64", conv2d_shape_same(128, 32, 16, 16, 64, 3, 3, 2)},
      {"resnet20_proj_16to32", conv2d_shape_same(128, 16, 32, 32, 32, 1, 1, 2)},
      {"resnet20_proj_32to64", conv2d_shape_same(128, 32, 16, 16, 64, 1, 1, 2)},
  };
}

enum class Pass { fwd, bwd_data, bwd_weight };
const char* pass_name(Pass p) {
  return p == Pass::fwd ? "fwd" : p == Pass::bwd_data ? "bwd_data" : "bwd_weight";
}
// onednn: its own layouts, the reorders into them done once outside the timing (as a framework
// that keeps its tensors blocked pays them); onednn_reorders: the same kernels with the
// reorders from and back to NCHW / OIHW inside the timing (what a caller whose tensors are
// NCHW pays per call, as detdl's do); onednn_nchw: forced onto NCHW / OIHW.
enum class Impl { detdl_portable, detdl_fast, onednn, onednn_reorders, onednn_nchw };
const char* impl_name(Impl i) {
  static const char* k[] = {"detdl_portable", "detdl_fast", "onednn", "onednn_reorders",
                            "onednn_nchw"};
  return k[static_cast<int>(i)];
}

// Zero-mean values in [-1, 1) from the index: no bias, so long sums stay well-conditioned.
float value(i64 i, i64 salt) {
  std::uint64_t z = static_cast<std::uint64_t>(i) * 0x9E3779B97F4A7C15ull + salt * 0xBF58476Dull;
  z ^= z >> 29;
  z *= 0x94D049BB133111EBull;
  z ^= z >> 32;
  return static_cast<float>(z & 0xFFFFFF) * 0x1p-23f - 1.0f;
}

// The operands of all three passes and the one output of the pass being timed.
struct Problem {
  Conv2dShape s;
  std::vector<float> x;   // (N, C, H, W)
  std::vector<float> w;   // (O, C, KH, KW)
  std::vector<float> dy;  // (N, O, OH, OW)
  explicit Problem(const Conv2dShape& shape)
      : s(shape),
        x(s.N * s.C * s.H * s.W),
        w(s.O * s.C * s.KH * s.KW),
        dy(s.N * s.O * s.OH * s.OW) {
    for (i64 i = 0; i < static_cast<i64>(x.size()); ++i) x[i] = value(i, 1);
    for (i64 i = 0; i < static_cast<i64>(w.size()); ++i) w[i] = value(i, 2);
    for (i64 i = 0; i < static_cast<i64>(dy.size()); ++i) dy[i] = value(i, 3);
  }
  i64 out_size(Pass p) const {
    return p == Pass::fwd        ? s.N * s.O * s.OH * s.OW
           : p == Pass::bwd_data ? s.N * s.C * s.H * s.W
                                 : s.O * s.C * s.KH * s.KW;
  }
};

void run_detdl(Level level, Pass p, const Problem& pr, float* out) {
  switch (p) {
    case Pass::fwd: cpu::conv2d_forward(level, pr.s, pr.x.data(), pr.w.data(), nullptr, out); break;
    case Pass::bwd_data:
      cpu::conv2d_backward_data(level, pr.s, pr.dy.data(), pr.w.data(), out);
      break;
    case Pass::bwd_weight:
      cpu::conv2d_backward_weight(level, pr.s, pr.x.data(), pr.dy.data(), out);
      break;
  }
}

#if DETDL_HAVE_DNNL
// One oneDNN convolution pass, set up outside the timed loop: primitive descriptor, the
// primitive's memories in its chosen layouts, the inputs reordered into them. execute()
// is what is timed for `onednn`, execute_with_reorders() for `onednn_reorders`; fetch()
// reorders the output back to detdl's layout.
class OnednnPass {
 public:
  OnednnPass(Pass p, const Problem& pr, bool plain)
      : eng_(dnnl::engine::kind::cpu, 0), strm_(eng_) {
    using dnnl::memory;
    using tag = memory::format_tag;
    const Conv2dShape& s = pr.s;
    const memory::dims src{s.N, s.C, s.H, s.W}, wei{s.O, s.C, s.KH, s.KW},
        dst{s.N, s.O, s.OH, s.OW}, strides{s.stride_h, s.stride_w}, pad_l{s.pad_top, s.pad_left};
    // detdl's shape has no bottom/right padding: windows past the input read zeros. oneDNN
    // wants dst = (src + l + r - k) / stride + 1 (floor), so r is what the last window
    // needs past the input, or 0 when it stops short (a 1x1 stride-2 'same' convolution).
    const memory::dims pad_r{std::max<i64>((s.OH - 1) * s.stride_h + s.KH - s.H - s.pad_top, 0),
                             std::max<i64>((s.OW - 1) * s.stride_w + s.KW - s.W - s.pad_left, 0)};
    auto md = [&](const memory::dims& d, tag user) {
      return memory::desc(d, memory::data_type::f32, plain ? user : tag::any);
    };
    const auto src_md = md(src, tag::nchw), wei_md = md(wei, tag::oihw),
               dst_md = md(dst, tag::nchw);
    const auto alg = dnnl::algorithm::convolution_direct;
    // The backward passes take the forward's primitive descriptor as their hint, as a
    // framework creates them.
    const dnnl::convolution_forward::primitive_desc fwd_pd(
        dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, src_md, wei_md,
                                        dst_md, strides, pad_l, pad_r),
        eng_);
    auto user = [&](const memory::dims& d, tag t, const float* data) {
      return memory({d, memory::data_type::f32, t}, eng_, const_cast<float*>(data));
    };
    switch (p) {
      case Pass::fwd:
        prim_ = dnnl::convolution_forward(fwd_pd);
        bind(DNNL_ARG_SRC, fwd_pd.src_desc(), user(src, tag::nchw, pr.x.data()));
        bind(DNNL_ARG_WEIGHTS, fwd_pd.weights_desc(), user(wei, tag::oihw, pr.w.data()));
        out_arg_ = DNNL_ARG_DST;
        out_user_md_ = memory::desc(dst, memory::data_type::f32, tag::nchw);
        args_[DNNL_ARG_DST] = memory(fwd_pd.dst_desc(), eng_);
        break;
      case Pass::bwd_data: {
        const dnnl::convolution_backward_data::primitive_desc pd(
            dnnl::convolution_backward_data::desc(alg, src_md, wei_md, dst_md, strides, pad_l,
                                                  pad_r),
            eng_, fwd_pd);
        prim_ = dnnl::convolution_backward_data(pd);
        bind(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), user(dst, tag::nchw, pr.dy.data()));
        bind(DNNL_ARG_WEIGHTS, pd.weights_desc(), user(wei, tag::oihw, pr.w.data()));
        out_arg_ = DNNL_ARG_DIFF_SRC;
        out_user_md_ = memory::desc(src, memory::data_type::f32, tag::nchw);
        args_[DNNL_ARG_DIFF_SRC] = memory(pd.diff_src_desc(), eng_);
        break;
      }
      case Pass::bwd_weight: {
        const dnnl::convolution_backward_weights::primitive_desc pd(
            dnnl::convolution_backward_weights::desc(alg, src_md, wei_md, dst_md, strides, pad_l,
                                                     pad_r),
            eng_, fwd_pd);
        prim_ = dnnl::convolution_backward_weights(pd);
        bind(DNNL_ARG_SRC, pd.src_desc(), user(src, tag::nchw, pr.x.data()));
        bind(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), user(dst, tag::nchw, pr.dy.data()));
        out_arg_ = DNNL_ARG_DIFF_WEIGHTS;
        out_user_md_ = memory::desc(wei, memory::data_type::f32, tag::oihw);
        args_[DNNL_ARG_DIFF_WEIGHTS] = memory(pd.diff_weights_desc(), eng_);
        break;
      }
    }
  }

  void execute() {
    prim_.execute(strm_, args_);
    strm_.wait();
  }

  // The inputs reordered from the caller's NCHW / OIHW again, the pass, its output reordered
  // back into `out` (where the primitive's layouts are the caller's, no reorder runs).
  void execute_with_reorders(float* out) {
    for (Move& m : in_moves_) m.r.execute(strm_, m.from, m.to);
    prim_.execute(strm_, args_);
    dnnl::memory dst(out_user_md_, eng_, out);
    if (args_[out_arg_].get_desc() != out_user_md_)
      dnnl::reorder(args_[out_arg_], dst).execute(strm_, args_[out_arg_], dst);
    strm_.wait();
  }

  // out: the pass's output in detdl's layout (NCHW or OIHW).
  void fetch(float* out) {
    dnnl::memory dst(out_user_md_, eng_, out);
    dnnl::reorder(args_[out_arg_], dst).execute(strm_, args_[out_arg_], dst);
    strm_.wait();
  }

 private:
  // The primitive's input `arg` in layout `want`: the user memory itself when the layouts
  // agree, else a copy reordered once, here.
  void bind(int arg, const dnnl::memory::desc& want, dnnl::memory user) {
    if (want == user.get_desc()) {
      args_[arg] = user;
      return;
    }
    dnnl::memory m(want, eng_);
    dnnl::reorder r(user, m);
    r.execute(strm_, user, m);
    strm_.wait();
    args_[arg] = m;
    in_moves_.push_back({r, user, m});
  }

  struct Move {
    dnnl::reorder r;
    dnnl::memory from, to;
  };
  std::vector<Move> in_moves_;  // the inputs' reorders, for execute_with_reorders
  dnnl::engine eng_;
  dnnl::stream strm_;
  dnnl::primitive prim_;
  std::unordered_map<int, dnnl::memory> args_;
  int out_arg_ = 0;
  dnnl::memory::desc out_user_md_;
};

// Every element of `got` against `ref`, within 1e-3 relative (with mean |ref| as the floor,
// so that outputs near zero after cancellation do not fail on rounding alone).
bool agree(const std::vector<float>& got, const std::vector<float>& ref) {
  double mean = 0.0;
  for (float v : ref) mean += std::fabs(v);
  mean /= static_cast<double>(ref.size());
  for (std::size_t i = 0; i < ref.size(); ++i)
    if (!(std::fabs(got[i] - ref[i]) <= 1e-3 * (std::fabs(ref[i]) + mean))) return false;
  return true;
}
#else
// Without oneDNN: 64 sampled outputs against a float64 loop over the definition (conv.h).
bool agree_sampled(Pass p, const Problem& pr, const std::vector<float>& got) {
  const Conv2dShape& s = pr.s;
  auto xpad = [&](i64 n, i64 c, i64 i, i64 j) -> double {
    return (i < 0 || i >= s.H || j < 0 || j >= s.W) ? 0.0
                                                    : pr.x[((n * s.C + c) * s.H + i) * s.W + j];
  };
  double mean = 0.0;
  for (float v : got) mean += std::fabs(v);
  mean /= static_cast<double>(got.size());
  for (i64 t = 0; t < 64; ++t) {
    const i64 e = (t * 7919 * 104729) % static_cast<i64>(got.size());
    double ref = 0.0;
    if (p == Pass::fwd) {
      const i64 ow = e % s.OW, oh = e / s.OW % s.OH, o = e / (s.OW * s.OH) % s.O,
                n = e / (s.OW * s.OH * s.O);
      for (i64 c = 0; c < s.C; ++c)
        for (i64 kh = 0; kh < s.KH; ++kh)
          for (i64 kw = 0; kw < s.KW; ++kw)
            ref += xpad(n, c, oh * s.stride_h - s.pad_top + kh, ow * s.stride_w - s.pad_left + kw) *
                   pr.w[((o * s.C + c) * s.KH + kh) * s.KW + kw];
    } else if (p == Pass::bwd_data) {
      const i64 j = e % s.W, i = e / s.W % s.H, c = e / (s.W * s.H) % s.C,
                n = e / (s.W * s.H * s.C);
      for (i64 kh = 0; kh < s.KH; ++kh)
        for (i64 kw = 0; kw < s.KW; ++kw) {
          const i64 a = i + s.pad_top - kh, b = j + s.pad_left - kw;
          if (a < 0 || b < 0 || a % s.stride_h || b % s.stride_w) continue;
          const i64 oh = a / s.stride_h, ow = b / s.stride_w;
          if (oh >= s.OH || ow >= s.OW) continue;
          for (i64 o = 0; o < s.O; ++o)
            ref += static_cast<double>(pr.w[((o * s.C + c) * s.KH + kh) * s.KW + kw]) *
                   pr.dy[((n * s.O + o) * s.OH + oh) * s.OW + ow];
        }
    } else {
      const i64 kw = e % s.KW, kh = e / s.KW % s.KH, c = e / (s.KW * s.KH) % s.C,
                o = e / (s.KW * s.KH * s.C);
      for (i64 n = 0; n < s.N; ++n)
        for (i64 oh = 0; oh < s.OH; ++oh)
          for (i64 ow = 0; ow < s.OW; ++ow)
            ref += xpad(n, c, oh * s.stride_h - s.pad_top + kh, ow * s.stride_w - s.pad_left + kw) *
                   pr.dy[((n * s.O + o) * s.OH + oh) * s.OW + ow];
    }
    if (!(std::fabs(got[e] - ref) <= 1e-3 * (std::fabs(ref) + mean))) return false;
  }
  return true;
}
#endif

void conv_pass(benchmark::State& state, const Conv2dShape& s, Pass p, Impl impl, int threads) {
  const Problem pr(s);
  std::vector<float> out(pr.out_size(p));
  [[maybe_unused]] const bool detdl = impl == Impl::detdl_portable || impl == Impl::detdl_fast;
  const Level level = impl == Impl::detdl_fast ? Level::fast : Level::portable;
  cpu::set_num_threads(threads);
  std::function<void()> run = [&] { run_detdl(level, p, pr, out.data()); };
#if DETDL_HAVE_DNNL
  omp_set_num_threads(threads);
  std::unique_ptr<OnednnPass> dnnl_pass;
  if (!detdl) {
    dnnl_pass = std::make_unique<OnednnPass>(p, pr, impl == Impl::onednn_nchw);
    if (impl == Impl::onednn_reorders)
      run = [&] { dnnl_pass->execute_with_reorders(out.data()); };
    else
      run = [&] { dnnl_pass->execute(); };
  }
#endif
  run();  // warm-up: page in the output, grow detdl's scratch, oneDNN's first-run setup
  for (auto _ : state) {
    run();
    benchmark::ClobberMemory();
  }
  // The check, after timing: this row's output against the other library's.
#if DETDL_HAVE_DNNL
  std::vector<float> ref(out.size());
  if (detdl) {
    OnednnPass other(p, pr, false);
    other.execute();
    other.fetch(ref.data());
  } else {
    dnnl_pass->fetch(out.data());
    run_detdl(Level::portable, p, pr, ref.data());
  }
  if (!agree(out, ref)) state.SkipWithError("outputs disagree (detdl vs oneDNN, relative 1e-3)");
#else
  if (!agree_sampled(p, pr, out))
    state.SkipWithError("outputs disagree with the float64 loop (relative 1e-3)");
#endif
  // Every pass is the same number of multiply-adds: N*O*OH*OW*C*KH*KW (padding taps counted).
  const double flop = 2.0 * static_cast<double>(s.N * s.O * s.OH * s.OW) * (s.C * s.KH * s.KW);
  state.counters["GFLOP/s"] =
      benchmark::Counter(1e-9 * flop, benchmark::Counter::kIsIterationInvariantRate);
  cpu::set_num_threads(1);
}

// The values of this suite's own "--<name>=value" arguments, taken out of argv before Google
// Benchmark sees it.
std::vector<std::string> take_flag(int& argc, char** argv, const std::string& prefix) {
  std::vector<std::string> values;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind(prefix, 0) == 0)
      values.push_back(a.substr(prefix.size()));
    else
      argv[kept++] = argv[i];
  }
  argc = kept;
  return values;
}

// "--threads=1,2,4": the thread counts to register; default 1,2. bench/peers.sh's scaling
// table uses it.
std::vector<int> take_threads_flag(int& argc, char** argv) {
  std::vector<int> threads;
  for (const std::string& v : take_flag(argc, argv, "--threads="))
    for (std::size_t pos = 0; pos <= v.size();) {
      const std::size_t comma = std::min(v.find(',', pos), v.size());
      const int t = std::atoi(v.substr(pos, comma - pos).c_str());
      if (t < 1) {
        std::fprintf(stderr, "bench_conv: --threads wants positive counts, got '%s'\n", v.c_str());
        std::exit(2);
      }
      threads.push_back(t);
      pos = comma + 1;
    }
  if (threads.empty()) threads = {1, 2};
  return threads;
}

// "--batch=N": every shape with N samples instead of 128 (the last one given). A small batch
// keeps a pass's operands in the caches (ResNet-20's s2_16to32 at N = 8: 768 KiB), so that
// the ratio to oneDNN with and without the trips to L3 and memory can be compared.
std::int64_t take_batch_flag(int& argc, char** argv) {
  std::int64_t batch = 0;
  for (const std::string& v : take_flag(argc, argv, "--batch=")) {
    char* end = nullptr;
    batch = std::strtoll(v.c_str(), &end, 10);
    if (end == v.c_str() || *end != '\0' || batch < 1) {
      std::fprintf(stderr, "bench_conv: --batch wants a positive sample count, got '%s'\n",
                   v.c_str());
      std::exit(2);
    }
  }
  return batch;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<int> thread_counts = take_threads_flag(argc, argv);
  const std::int64_t batch = take_batch_flag(argc, argv);
#if DETDL_HAVE_DNNL
  const Impl kImpls[] = {Impl::detdl_portable, Impl::detdl_fast, Impl::onednn,
                         Impl::onednn_reorders, Impl::onednn_nchw};
#else
  const Impl kImpls[] = {Impl::detdl_portable, Impl::detdl_fast};  // no peer to time
#endif
  for (NamedShape ns : shapes()) {
    if (batch > 0) ns.s.N = batch;
    for (Pass p : {Pass::fwd, Pass::bwd_data, Pass::bwd_weight})
      for (int threads : thread_counts)
        for (Impl impl : kImpls) {
          const std::string name = std::string("conv/") + ns.name + "/" + pass_name(p) + "/" +
                                   impl_name(impl) + "/t" + std::to_string(threads);
          benchmark::RegisterBenchmark(name.c_str(), conv_pass, ns.s, p, impl, threads)
              ->UseRealTime()
              ->Unit(benchmark::kMillisecond);
        }
  }
#if DETDL_HAVE_DNNL
  // The oneDNN actually loaded, into the JSON's context (bench/peers.sh may run a copy
  // packed from another machine, where the package manager knows another version).
  const dnnl_version_t* v = dnnl_version();
  benchmark::AddCustomContext("onednn", std::to_string(v->major) + "." + std::to_string(v->minor) +
                                            "." + std::to_string(v->patch));
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
