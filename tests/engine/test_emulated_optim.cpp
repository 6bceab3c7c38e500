// The `emulated` level in the engine's optimizer and activation op (engine/optim.cpp,
// engine/ops/activation.cpp): the drawn form replaces the configured one, is the same at
// every step and after a resume, reaches every form over a few hundred impl seeds, gives
// the same bits on 1, 2 and 3 threads; with the families off, the canonical update runs.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <vector>

#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/ops/ops.h"
#include "engine/optim.h"
#include "kernels/common/philox.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/optim.h"
#include "kernels/cpu/parallel.h"

namespace detdl {
namespace {

using i64 = std::int64_t;
using Vec = std::vector<float>;

Vec random_vec(i64 n, std::uint32_t sub, float lo, float hi) {
  Vec v(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i)
    v[i] = lo + (hi - lo) * philox_uniform(21, RandomStream::test, sub, i);
  return v;
}
bool same_bits(const Vec& a, const Vec& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

RunContext emulating(std::uint64_t seed, std::initializer_list<ImplFamily> fams) {
  RunContext c;
  c.impl_seed = seed;
  for (ImplFamily f : fams) c.emulate[static_cast<int>(f)] = true;
  return c;
}

// Two parameters (n and 5 elements) with fixed initial values.
std::vector<NamedTensor> make_params(i64 n) {
  std::vector<NamedTensor> ps;
  ps.push_back({"w", Tensor::from_vector({n}, random_vec(n, 1, -1.0f, 1.0f)), {}});
  ps.push_back({"b", Tensor::from_vector({5}, random_vec(5, 2, -1.0f, 1.0f)), {}});
  for (auto& p : ps) p.tensor.set_requires_grad(true);
  return ps;
}

// Gradients of step t: loss = sum(p * c_t) gives p.grad() = c_t.
void set_grads(std::vector<NamedTensor>& ps, int t) {
  Tensor loss;
  for (std::size_t i = 0; i < ps.size(); ++i) {
    Tensor& p = ps[i].tensor;
    p.zero_grad();
    const Tensor c = Tensor::from_vector(
        p.shape(),
        random_vec(p.numel(),
                   100 + 10 * static_cast<std::uint32_t>(t) + static_cast<std::uint32_t>(i), -0.5f,
                   0.5f));
    const Tensor li = ops::sum(ops::mul(p, c));
    loss = loss.defined() ? ops::add(loss, li) : li;
  }
  backward(loss);
}

// Runs steps [from, to) as the trainer does (places reset at each step).
void run_steps(Optimizer& opt, std::vector<NamedTensor>& ps, int from, int to) {
  for (int t = from; t < to; ++t) {
    context().step = static_cast<std::uint32_t>(t);
    context().begin_step_places();
    set_grads(ps, t);
    opt.step(0.01f);
  }
}

Vec values(const std::vector<NamedTensor>& ps) {
  Vec out;
  for (const auto& p : ps) {
    const Vec v = p.tensor.to_vector();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

OptimizerConfig config(OptimizerConfig::Kind k, bool keras) {
  OptimizerConfig c;
  c.kind = k;
  c.momentum = 0.9f;
  c.weight_decay = 0.01f;
  c.keras_form = keras;
  return c;
}
const OptimizerConfig::Kind kKinds[] = {OptimizerConfig::Kind::sgd, OptimizerConfig::Kind::adam,
                                        OptimizerConfig::Kind::rmsprop};

// With the optimizer and contraction families off (other families on), the update is the
// canonical kernel's with the configured form.
TEST(EmulatedOptim, CanonicalWhenFamiliesOff) {
  ContextGuard g(emulating(5, {ImplFamily::matmul, ImplFamily::math}));
  const i64 n = 300;
  for (auto k : kKinds)
    for (bool keras : {false, true}) {
      auto ps = make_params(n);
      Optimizer opt(ps, config(k, keras));
      auto ref = make_params(n);
      Vec s0(n), s1(n), b0(5), b1(5);
      for (int t = 0; t < 3; ++t) {
        context().begin_step_places();
        set_grads(ps, t);
        set_grads(ref, t);
        opt.step(0.01f);
        const auto [bc1, bc2] = cpu::adam_bias_corrections(0.9f, 0.999f, t + 1);
        for (int i = 0; i < 2; ++i) {
          float* p = ref[i].tensor.f32();
          const float* gr = ref[i].tensor.grad().f32();
          float* a = i ? b0.data() : s0.data();
          float* b = i ? b1.data() : s1.data();
          const i64 m = ref[i].tensor.numel();
          const OptimizerConfig c = config(k, keras);
          if (k == OptimizerConfig::Kind::sgd)
            cpu::sgd_update(m, p, gr, a, {0.01f, c.momentum, c.weight_decay, false, t == 0, keras});
          else if (k == OptimizerConfig::Kind::adam)
            cpu::adam_update(
                m, p, gr, a, b,
                {0.01f, c.beta1, c.beta2, c.eps, bc1, bc2, c.weight_decay, false, keras});
          else  // the configured rmsprop is always PyTorch's form
            cpu::rmsprop_update(m, p, gr, b, a,
                                {0.01f, c.alpha, c.eps, c.momentum, c.weight_decay});
        }
      }
      EXPECT_TRUE(same_bits(values(ps), values(ref))) << optimizer_name(k) << " keras " << keras;
    }
}

// Over 300 impl seeds every form of every kind is drawn; each seed's step equals the
// kernel run with its drawn form.
TEST(EmulatedOptim, DrawsCoverEveryForm) {
  for (auto k : kKinds) {
    std::set<int> forms;
    for (std::uint64_t s = 0; s < 300; ++s) {
      ContextGuard g(emulating(s, {ImplFamily::optimizer}));
      const OptimizerImpl impl = Optimizer::draw_impl(k);
      EXPECT_EQ(impl.fuse, 0u);  // contraction is off
      forms.insert(impl.form);
    }
    EXPECT_EQ(static_cast<int>(forms.size()), optimizer_form_count(k)) << optimizer_name(k);
    EXPECT_EQ(*forms.begin(), 0);
  }
  std::set<std::uint32_t> masks;
  for (std::uint64_t s = 0; s < 300; ++s) {
    ContextGuard g(emulating(s, {ImplFamily::contraction}));
    const OptimizerImpl impl = Optimizer::draw_impl(OptimizerConfig::Kind::adam);
    EXPECT_EQ(impl.form, -1);
    masks.insert(impl.fuse);
  }
  EXPECT_GT(masks.size(), 50u);  // of 64
}

TEST(EmulatedOptim, DrawnFormIsTheKernelsForm) {
  const i64 n = 200;
  for (auto k : kKinds)
    for (std::uint64_t s = 0; s < 6; ++s) {
      ContextGuard g(emulating(s, {ImplFamily::optimizer, ImplFamily::contraction}));
      auto ps = make_params(n), ref = make_params(n);
      Optimizer opt(ps, config(k, false));
      set_grads(ps, 0);
      set_grads(ref, 0);
      context().begin_step_places();
      const OptimizerImpl impl = Optimizer::draw_impl(k);
      context().begin_step_places();
      opt.step(0.01f);
      const OptimizerConfig c = config(k, false);
      const auto [bc1, bc2] = cpu::adam_bias_corrections(c.beta1, c.beta2, 1);
      for (int i = 0; i < 2; ++i) {
        const i64 m = ref[i].tensor.numel();
        Vec a(m, 0.0f), b(m, 0.0f);
        float* p = ref[i].tensor.f32();
        const float* gr = ref[i].tensor.grad().f32();
        if (k == OptimizerConfig::Kind::sgd)
          cpu::sgd_update(m, p, gr, a.data(),
                          {0.01f, c.momentum, c.weight_decay, false, true, impl.form == 1},
                          impl.fuse);
        else if (k == OptimizerConfig::Kind::adam)
          cpu::adam_update(m, p, gr, a.data(), b.data(),
                           {0.01f, c.beta1, c.beta2, c.eps, bc1, bc2, c.weight_decay, false, false},
                           static_cast<AdamForm>(impl.form), impl.fuse);
        else {
          RmspropParams r{0.01f, c.alpha, c.eps, c.momentum, c.weight_decay};
          r.keras = impl.form == 1;
          cpu::rmsprop_update(m, p, gr, a.data(), b.data(), r, impl.fuse);
        }
      }
      EXPECT_TRUE(same_bits(values(ps), values(ref)))
          << optimizer_name(k) << " seed " << s << " form " << optimizer_form_name(k, impl.form);
    }
}

// The trainer's optimizer takes place 0 of its family at every step: one form for the
// whole run, so a run resumed from its state continues bit for bit.
TEST(EmulatedOptim, SameFormEveryStepAndAfterResume) {
  const i64 n = 100;
  for (auto k : kKinds)
    for (std::uint64_t s : {1u, 2u, 3u}) {
      ContextGuard g(emulating(s, {ImplFamily::optimizer, ImplFamily::contraction}));
      std::set<std::pair<int, std::uint32_t>> drawn;
      for (int t = 0; t < 5; ++t) {
        context().step = static_cast<std::uint32_t>(t);
        context().begin_step_places();
        const OptimizerImpl impl = Optimizer::draw_impl(k);
        drawn.insert({impl.form, impl.fuse});
      }
      EXPECT_EQ(drawn.size(), 1u);
      auto whole = make_params(n);
      Optimizer a(whole, config(k, false));
      run_steps(a, whole, 0, 5);
      auto part = make_params(n);
      Optimizer b(part, config(k, false));
      run_steps(b, part, 0, 2);
      TensorFile f;
      for (auto& [name, t] : b.state()) f.tensors.emplace_back(name, t.clone());
      Optimizer c(part, config(k, false));
      c.load_state(f, "", b.steps());
      run_steps(c, part, 2, 5);
      EXPECT_TRUE(same_bits(values(whole), values(part))) << optimizer_name(k) << " seed " << s;
    }
}

TEST(EmulatedOptim, SameBitsOnOneTwoThreeThreads) {
  const i64 n = 70001;  // three 32768-element blocks
  for (auto k : kKinds) {
    Vec first;
    for (int threads : {1, 2, 3}) {
      cpu::set_num_threads(threads);
      ContextGuard g(emulating(9, {ImplFamily::optimizer, ImplFamily::contraction}));
      auto ps = make_params(n);
      Optimizer opt(ps, config(k, false));
      run_steps(opt, ps, 0, 3);
      if (threads == 1)
        first = values(ps);
      else
        EXPECT_TRUE(same_bits(first, values(ps))) << optimizer_name(k) << " " << threads;
    }
    cpu::set_num_threads(1);
  }
}

// The activation op draws math for kinds with transcendentals and contraction for tanh
// only, and runs the drawn variant forward and backward.
TEST(EmulatedActivationOp, DrawsAndRunsTheVariant) {
  const i64 n = 1000;
  const Vec xv = random_vec(n, 7, -4.0f, 4.0f);
  int alt_seen = 0, fused_seen = 0;
  for (std::uint64_t s = 0; s < 40; ++s) {
    ContextGuard g(emulating(s, {ImplFamily::math, ImplFamily::contraction}));
    context().begin_step_places();
    (void)ops::activation(Tensor::from_vector({n}, xv), Activation::relu);  // no draw
    Tensor x = Tensor::from_vector({n}, xv);
    x.set_requires_grad(true);
    EXPECT_EQ(context().impl_place[static_cast<int>(ImplFamily::math)], 0u);
    const auto m = ImplDraw{s, ImplFamily::math, 0, 0};
    const auto c = ImplDraw{s, ImplFamily::contraction, 0, 0};
    const ActImpl impl{m.coin(0), c.coin(kActSiteTanhGrad) ? 1u << kActSiteTanhGrad : 0u};
    const Tensor y = ops::activation(x, Activation::tanh);
    EXPECT_EQ(context().impl_place[static_cast<int>(ImplFamily::math)], 1u);
    EXPECT_EQ(context().impl_place[static_cast<int>(ImplFamily::contraction)], 1u);
    backward(ops::sum(y));
    Vec yr(n), dxr(n);
    const Vec ones(n, 1.0f);
    cpu::activation_forward(Activation::tanh, 0.0f, xv.data(), yr.data(), n, impl);
    cpu::activation_backward(Activation::tanh, 0.0f, xv.data(), yr.data(), ones.data(), dxr.data(),
                             n, impl);
    EXPECT_TRUE(same_bits(y.to_vector(), yr)) << s;
    EXPECT_TRUE(same_bits(x.grad().to_vector(), dxr)) << s;
    alt_seen += impl.alt_math;
    fused_seen += impl.fuse != 0;
  }
  EXPECT_GT(alt_seen, 0);
  EXPECT_LT(alt_seen, 40);
  EXPECT_GT(fused_seen, 0);
  EXPECT_LT(fused_seen, 40);
}

}  // namespace
}  // namespace detdl
