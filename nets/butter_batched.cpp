// The batched trainer of nets/butter_batched.h. Each step mirrors Trainer::train_step on
// the ops' kernels: the tensors the autograd path allocates per op are buffers kept per
// repetition, and the tape's order of gradient accumulation is written out where it
// decides bits (a residual input's gradient; a penalised weight's).
#include "nets/butter_batched.h"

#include <array>
#include <chrono>
#include <cmath>
#include <memory>
#include <span>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/hash.h"
#include "engine/train_checkpoint.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/lanes.h"
#include "kernels/cpu/lanes_loss.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/fpmode.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/reduce.h"

namespace detdl::nets {

namespace {

using i64 = std::int64_t;

// One repetition's state. Layer d reads in(d) (the batch for d = 0) and writes out(d).
struct Rep {
  BatchedRun* run = nullptr;
  RunContext ctx;
  Level matmul = Level::portable, bias_grad = Level::portable, loss = Level::portable;
  std::vector<NamedTensor> params;  // weight, bias per layer (model order)
  std::unique_ptr<Optimizer> opt;
  std::vector<Tensor> grads;  // per parameter, attached as its .grad for the update
  // Forward, per hidden layer d: z = in W^T + b, a = relu(z), sum = a + in (residual).
  std::vector<std::vector<float>> z, a, sum;
  // Backward, per hidden layer d: g = dL/d out(d), dz = dL/dz.
  std::vector<std::vector<float>> g, dz;
  std::vector<float> t;  // dz W for a residual layer, before the skip's gradient is added
  Tensor xb, yb;         // the batch (count, n_in) and its targets
  Tensor zo, out, dout;  // the output layer's pre-activation, output and dL/d out
  std::vector<float> dzo;
  std::vector<float> probs;          // softmax of the output (class-label losses), for the metrics
  std::vector<float> test_out;       // by_lanes: the test set's outputs at an epoch's end
  std::vector<float> metric_values;  // by_lanes: the batch's per-sample metrics (Metric, count)
  std::vector<i64> order;
  i64 order_epoch = -1;
  EpochProgress prog;
  TrainResult result;
  EpochStats stats;
};

bool residual_at(const DenseStack& s, std::size_t d) {
  return s.residual && d >= 1 && d + 1 < s.widths.size();
}

const float* layer_in(const Rep& r, const DenseStack& s, std::size_t d) {
  if (d == 0) return r.xb.f32();
  return residual_at(s, d - 1) ? r.sum[d - 1].data() : r.a[d - 1].data();
}

// The buffer that holds dL/d in(d) for d >= 1: the previous layer's g.
float* grad_in(Rep& r, std::size_t d) { return r.g[d - 1].data(); }

std::string check_model(const Module& m, const DenseStack& s) {
  const auto ps = m.parameters();
  if (ps.size() != 2 * s.widths.size())
    return "the model has " + std::to_string(ps.size()) + " parameter tensors, the stack " +
           std::to_string(2 * s.widths.size());
  i64 fan_in = s.n_in;
  for (std::size_t d = 0; d < s.widths.size(); ++d) {
    const Shape w{s.widths[d], fan_in}, b{s.widths[d]};
    if (ps[2 * d].tensor.shape() != w || ps[2 * d + 1].tensor.shape() != b)
      return "layer " + std::to_string(d) + " of the model is " +
             shape_str(ps[2 * d].tensor.shape()) + ", the stack's " + shape_str(w);
    fan_in = s.widths[d];
  }
  return {};
}

// Runs fn(r) for every repetition on the pool, each under its run's context (the kernels'
// nested parallel calls run serially inside).
template <class Fn>
void per_rep(std::span<Rep> reps, Fn&& fn) {
  cpu::parallel_for(static_cast<i64>(reps.size()), [&](i64 i) {
    Rep& r = reps[static_cast<std::size_t>(i)];
    ContextGuard guard(r.ctx);
    fn(r);
  });
}

// C[r] (M, N) = opA[r] * opB[r] over the repetitions; pointers from the getters.
template <class A, class B, class C>
void batched(std::span<Rep> reps, bool ta, bool tb, i64 M, i64 N, i64 K, A a, i64 lda, B b, i64 ldb,
             C c, i64 ldc) {
  // Reused: this runs for every layer of every step (by repetition, once per repetition).
  thread_local std::vector<const float*> pa, pb;
  thread_local std::vector<float*> pc;
  pa.clear(), pb.clear(), pc.clear();
  for (Rep& r : reps) {
    pa.push_back(a(r));
    pb.push_back(b(r));
    pc.push_back(c(r));
  }
  cpu::sgemm_batched(reps[0].matmul, ta, tb, static_cast<i64>(reps.size()), M, N, K, pa.data(), lda,
                     pb.data(), ldb, pc.data(), ldc);
}

void ensure(std::vector<float>& v, i64 n) {
  if (static_cast<i64>(v.size()) < n) v.resize(static_cast<std::size_t>(n));
}

// y (count, O) = y + b row by row (ops::linear's bias add).
void add_bias(float* y, const float* b, i64 count, i64 O) {
  for (i64 n = 0; n < count; ++n)
    for (i64 o = 0; o < O; ++o) y[n * O + o] = y[n * O + o] + b[o];
}

// The data loss of `count` rows (compute_loss's kernels; ops:: calls the same ones, with no
// gradient under NoGradGuard): out (count, K) the net's output, yb the targets; dout
// (count, K) receives dL/d out (upstream gradient 1) and probs (count, K) the softmax for
// the class-label losses (the metrics'), each where given.
float data_loss(const Rep& r, LossKind kind, i64 count, i64 K, const float* out, const Tensor& yb,
                float* dout, float* probs) {
  switch (kind) {
    case LossKind::softmax_ce:
    case LossKind::keras_ce:
      return cpu::softmax_cross_entropy(
          r.loss, count, K, out, yb.i32(), nullptr, dout,
          kind == LossKind::keras_ce ? CrossEntropyForm::keras_clipped : CrossEntropyForm::exact,
          probs);
    case LossKind::bce:
      return cpu::binary_cross_entropy(r.loss, count * K, out, yb.f32(), false, nullptr, dout);
    case LossKind::mse:
      return cpu::mean_squared_error(r.loss, count * K, out, yb.f32(), nullptr, dout);
  }
  throw std::logic_error("unknown loss");
}

// The training batch's data loss, its gradient into r.dout and (class-label losses) its
// softmax into r.probs.
float loss_and_grad(Rep& r, LossKind kind, i64 count, i64 K) {
  ensure(r.probs, count * K);
  return data_loss(r, kind, count, K, r.out.f32(), r.yb, r.dout.data_f32(), r.probs.data());
}

// The step's training loss: the data loss plus each penalised parameter's terms, in
// parameter order, l1 then l2 (Trainer::train_step's ops::add chain).
float total_loss(const Rep& r, float data_loss) {
  const TrainConfig& cfg = r.run->cfg;
  float loss = data_loss;
  for (const auto& p : r.params) {
    if (!penalized(cfg, p)) continue;
    if (cfg.l1 > 0.0f)
      loss = loss + cfg.l1 * cpu::l1_penalty(r.loss, p.tensor.numel(), p.tensor.f32());
    if (cfg.l2 > 0.0f)
      loss = loss + cfg.l2 * cpu::l2_penalty(r.loss, p.tensor.numel(), p.tensor.f32());
  }
  return loss;
}

// Adds the penalties' gradients to a parameter's gradient as the tape accumulates them: the
// penalty nodes come last in the tape, so they reach the parameter first (l2's, then
// l1's added to it), and the layer's own gradient is added to that.
void add_penalty_grads(const TrainConfig& cfg, const NamedTensor& p, float* grad,
                       std::vector<float>& l2, std::vector<float>& l1) {
  const i64 n = p.tensor.numel();
  const float* w = p.tensor.f32();
  const bool has1 = cfg.l1 > 0.0f, has2 = cfg.l2 > 0.0f;
  if (!has1 && !has2) return;
  l2.assign(static_cast<std::size_t>(n), 0.0f);
  l1.assign(static_cast<std::size_t>(n), 0.0f);
  if (has2) cpu::l2_penalty_grad_add(n, w, cfg.l2, l2.data());
  if (has1) cpu::l1_penalty_grad_add(n, w, cfg.l1, l1.data());
  for (i64 i = 0; i < n; ++i) {
    const float pen = has2 && has1 ? l2[i] + l1[i] : has2 ? l2[i] : l1[i];
    grad[i] = pen + grad[i];
  }
}

// Up to cpu::lanes::kernels().lanes repetitions stepping together in SIMD lanes (BatchOrder::by_lanes):
// their layers' weights, activations and gradients in kernels/cpu/lanes.h's layout, the
// same names as Rep's (per layer: w, b; per hidden layer: z, a, sum, g, dz).
struct LaneGroup {
  std::span<Rep> reps;
  std::vector<std::vector<float>> w, b, z, a, sum, g, dz;
  std::vector<float> x, zo, dzo, t, dw, db;
  std::vector<float> probs, metric_values;  // lane_loss_step's softmax and per-sample metrics
  std::vector<std::int32_t> labels;         // the batch's labels (lane_loss_step)
  std::vector<float> test_zo;               // the test set's outputs (lane_test_scores)
  std::vector<std::int32_t> test_labels;    // the test set's labels, once filled
  std::vector<float> tx;                    // the test rows (the same every epoch), once filled
  std::vector<const float*> src;            // per repetition, for interleave / deinterleave
  std::vector<float*> dst;
  std::vector<const float*> xs;    // per repetition, its training set's inputs (gather_rows)
  std::vector<const i64*> orders;  // per repetition, its batch's rows (gather_rows)
};

// The lanes give each repetition the bits of its run alone where every product and bias
// gradient of the run is at `portable` (the lane kernels are the canonical order).
bool lanes_apply(std::span<const Rep> reps) {
  for (const Rep& r : reps)
    if (r.matmul != Level::portable || r.bias_grad != Level::portable) return false;
  return true;
}

}  // namespace

std::string batched_refusal(const std::vector<BatchedRun>& runs, const DenseStack& stack) {
  if (runs.empty()) return "no runs";
  if (stack.widths.size() < 2 || stack.n_in < 1) return "the stack has no layers";
  const BatchedRun& first = runs[0];
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const BatchedRun& r = runs[i];
    const std::string at = "run " + std::to_string(i) + ": ";
    if (!r.model || !r.train) return at + "no model or training set";
    if (const std::string m = check_model(*r.model, stack); !m.empty()) return at + m;
    const TrainConfig& c = r.cfg;
    if (c.device != Device::cpu) return at + "device " + std::string(device_name(c.device));
    if (c.context.any_emulated()) return at + "emulated op families";
    for (int f = 0; f < kOpFamilyCount; ++f)
      if (c.context.level_of[f] == Level::fast) return at + "an op family at level fast";
    if (c.augment) return at + "augmentation";
    if (c.flush_subnormals != first.cfg.flush_subnormals)
      return at + "its flush_subnormals differs from run 0's";
    if (!c.checkpoint_path.empty() || c.stop_after_steps >= 0) return at + "checkpoints";
    if (c.on_step || c.on_step_model) return at + "per-step callbacks";
    if (c.batch_size < 1 || c.epochs < 0) return at + "a bad batch size or epoch count";
    if (r.train->size() != first.train->size() || c.batch_size != first.cfg.batch_size ||
        c.epochs != first.cfg.epochs)
      return at + "its training rows, batch size or epochs differ from run 0's";
    if (r.train->y.dim(0) != r.train->size() || r.train->size() == 0)
      return at + "an empty or ragged training set";
    if (takes_class_labels(c.loss) == (r.train->y.dtype() != DType::i32))
      return at + "targets that do not fit the loss";
  }
  return {};
}

std::vector<TrainResult> fit_batched(
    std::vector<BatchedRun>& runs, const DenseStack& stack, int threads,
    const std::function<void(std::size_t, const EpochStats&)>& on_epoch, BatchOrder order,
    const BatchedCheckpoints* checkpoints) {
  if (const std::string why = batched_refusal(runs, stack); !why.empty())
    throw std::invalid_argument("repetitions trained together: " + why);
  if (checkpoints && checkpoints->paths.size() != runs.size())
    throw std::invalid_argument(
        "repetitions trained together: " + std::to_string(checkpoints->paths.size()) +
        " checkpoint paths for " + std::to_string(runs.size()) + " runs");
  cpu::set_num_threads(threads);
  const cpu::FlushSubnormalsScope flush(runs[0].cfg.flush_subnormals);  // all alike (refusal)
  const std::size_t L = stack.widths.size(), out_layer = L - 1;
  const i64 K = stack.widths.back(), n = runs[0].train->size(), B = runs[0].cfg.batch_size;
  const i64 spe = (n + B - 1) / B;

  std::vector<Rep> reps(runs.size());
  for (std::size_t i = 0; i < runs.size(); ++i) {
    Rep& r = reps[i];
    r.run = &runs[i];
    const TrainConfig& cfg = runs[i].cfg;
    r.ctx = cfg.context;
    r.ctx.dropout_seed = cfg.dropout_seed;
    r.matmul = cfg.context.level(OpFamily::matmul);
    r.bias_grad = cfg.context.level(OpFamily::bias_grad);
    r.loss = cfg.context.level(OpFamily::loss_reduce);
    Module& m = *runs[i].model;
    m.to(Device::cpu);
    initialize_for_run(m, cfg);
    m.train(true);
    r.params = m.parameters();
    r.opt = std::make_unique<Optimizer>(r.params, cfg.optimizer);
    for (const auto& p : r.params) r.grads.push_back(Tensor::zeros(p.tensor.shape()));
    r.z.resize(L - 1), r.a.resize(L - 1), r.sum.resize(L - 1), r.g.resize(L - 1),
        r.dz.resize(L - 1);
  }
  // Matches the reference run (sgemm_batched requires one level for all products).
  for (const Rep& r : reps)
    if (r.matmul != reps[0].matmul)
      throw std::invalid_argument("repetitions trained together: matmul levels differ");

  // Where the runs start: epoch 0, or their checkpoints' shared epoch end.
  i64 start_epoch = 0;
  if (checkpoints && checkpoints->resume) {
    for (std::size_t i = 0; i < reps.size(); ++i) {
      Rep& r = reps[i];
      const TrainConfig& cfg = runs[i].cfg;
      const std::string& path = checkpoints->paths[i];
      const RunShape shape{n, B, spe, spe * cfg.epochs, cfg.metrics};
      const i64 step = restore_training_checkpoint(path, *runs[i].model, *r.opt, r.prog,
                                                   training_identity(cfg), shape);
      if (step % spe != 0)
        throw std::runtime_error(
            "checkpoint " + path + ": step " + std::to_string(step) +
            " is inside an epoch; runs trained together resume at an epoch's end");
      if (i > 0 && step != start_epoch * spe)
        throw std::runtime_error("checkpoint " + path + ": at epoch " + std::to_string(step / spe) +
                                 ", " + checkpoints->paths[0] + " at epoch " +
                                 std::to_string(start_epoch) +
                                 " (runs trained together step in lockstep)");
      start_epoch = step / spe;
      r.result.resumed = true;
      r.result.first_step = r.result.steps = step;
    }
  }
  // Every run's checkpoint after `epochs_done` epochs (the epoch's progress is empty then).
  auto last_write = std::chrono::steady_clock::now();
  auto write_checkpoints = [&](i64 epochs_done) {
    for (std::size_t i = 0; i < reps.size(); ++i) {
      const Rep& r = reps[i];
      const TrainConfig& cfg = runs[i].cfg;
      save_training_checkpoint(checkpoints->paths[i], *runs[i].model, *r.opt, epochs_done * spe,
                               r.prog, training_identity(cfg),
                               checkpoints->extra ? checkpoints->extra(i, r.result)
                                                  : std::map<std::string, std::string>{});
    }
    last_write = std::chrono::steady_clock::now();
  };

  auto t_epoch = std::chrono::steady_clock::now();
  // The batch of each repetition (its own order and training set) and its buffers.
  // gather_x / gather_y false: the inputs / targets are not gathered here (the lanes take them
  // from the training sets' rows directly: lane_step, lane_loss_step).
  auto prepare = [&](std::span<Rep> reps, i64 step, bool gather_x = true, bool gather_y = true) {
    const i64 epoch = step / spe, first = (step % spe) * B, count = std::min(B, n - first);
    per_rep(reps, [&](Rep& r) {
      const BatchedRun& run = *r.run;
      if (r.order_epoch != epoch) r.order = epoch_order(n, run.cfg, r.order_epoch = epoch);
      if (gather_x) r.xb = gather_rows(run.train->x, r.order.data() + first, count);
      if (gather_y) r.yb = gather_rows(run.train->y, r.order.data() + first, count);
      r.ctx.step = static_cast<std::uint32_t>(step);
      r.ctx.dropout_layer = 0;
      for (std::size_t d = 0; d < out_layer; ++d) {
        const i64 w = stack.widths[d];
        ensure(r.z[d], count * w), ensure(r.a[d], count * w), ensure(r.g[d], count * w),
            ensure(r.dz[d], count * w);
        if (residual_at(stack, d)) ensure(r.sum[d], count * w);
      }
      if (!r.zo.defined() || r.zo.dim(0) != count) {  // new only for a batch of another size
        r.zo = Tensor::empty({count, K});
        r.out = stack.sigmoid_output ? Tensor::empty({count, K}) : r.zo;
        r.dout = Tensor::empty({count, K});
      }
      ensure(r.dzo, count * K);
    });
  };
  // Loss, penalties and the epoch's bookkeeping, then dL/d z of the output layer (r.zo holds
  // the output layer's pre-activation).
  auto loss_step = [&](std::span<Rep> reps, i64 count) {
    per_rep(reps, [&](Rep& r) {
      const TrainConfig& cfg = r.run->cfg;
      if (stack.sigmoid_output)
        cpu::activation_forward(Activation::sigmoid, 0.0f, r.zo.f32(), r.out.data_f32(), count * K);
      const float data_loss = loss_and_grad(r, cfg.loss, count, K);
      if (!std::isfinite(data_loss)) ++r.result.nonfinite_loss_steps;
      record_batch(cfg.loss, cfg.metrics, r.out, r.yb, total_loss(r, data_loss), r.prog,
                   takes_class_labels(cfg.loss) ? r.probs.data() : nullptr);
      if (stack.sigmoid_output)
        cpu::activation_backward(Activation::sigmoid, 0.0f, r.zo.f32(), r.out.f32(), r.dout.f32(),
                                 r.dzo.data(), count * K);
      else
        std::copy(r.dout.f32(), r.dout.f32() + count * K, r.dzo.data());
    });
  };
  // The update, then the step's hash and, at an epoch's end, its summary.
  // The epoch's summary of one repetition (its test set's evaluation passed in where the
  // lanes made it), and a fresh epoch.
  auto summarize = [&](Rep& r, i64 epoch, float penalty, const DoneEval* test_done) {
    r.stats = summarize_epoch(*r.run->model, r.run->cfg, epoch, n, r.prog, r.run->evals, penalty,
                              t_epoch, test_done);
    r.prog = EpochProgress{};
  };
  // summarize_here: false where the caller summarizes the epoch itself (lane_step).
  auto update = [&](std::span<Rep> reps, i64 step, bool summarize_here = true) {
    const i64 epoch = step / spe;
    const bool epoch_end = summarize_here && (step + 1) % spe == 0;
    per_rep(reps, [&](Rep& r) {
      const TrainConfig& cfg = r.run->cfg;
      std::vector<float> l2, l1;
      for (std::size_t i = 0; i < r.params.size(); ++i) {
        if (penalized(cfg, r.params[i]))
          add_penalty_grads(cfg, r.params[i], r.grads[i].data_f32(), l2, l1);
        accumulate_grad(r.params[i].tensor, r.grads[i]);
      }
      r.opt->step(cfg.schedule.lr(epoch));
      r.opt->zero_grad();
      r.result.steps = step + 1;
      if (cfg.step_hashes) r.result.step_hashes.push_back(weight_hash(*r.run->model));
      if (epoch_end) summarize(r, epoch, penalty_value(*r.run->model, cfg), nullptr);
    });
  };

  // Step `step` of the repetitions in `reps`: layer by layer over all of them.
  auto step_of = [&](std::span<Rep> reps, i64 step) {
    const i64 first = (step % spe) * B, count = std::min(B, n - first);
    prepare(reps, step);

    // Forward: one batched product per layer, then the element-wise work per repetition.
    i64 fan_in = stack.n_in;
    for (std::size_t d = 0; d < L; ++d) {
      const i64 w = stack.widths[d];
      batched(
          reps, false, true, count, w, fan_in, [&](Rep& r) { return layer_in(r, stack, d); },
          fan_in, [&](Rep& r) { return r.params[2 * d].tensor.f32(); }, fan_in,
          [&](Rep& r) { return d == out_layer ? r.zo.data_f32() : r.z[d].data(); }, w);
      per_rep(reps, [&](Rep& r) {
        const float* b = r.params[2 * d + 1].tensor.f32();
        if (d == out_layer) {
          add_bias(r.zo.data_f32(), b, count, w);
          return;
        }
        add_bias(r.z[d].data(), b, count, w);
        cpu::activation_forward(Activation::relu, 0.0f, r.z[d].data(), r.a[d].data(), count * w);
        if (residual_at(stack, d)) {  // ops::add(relu(...), x)
          const float* x = layer_in(r, stack, d);
          float* s = r.sum[d].data();
          for (i64 i = 0; i < count * w; ++i) s[i] = r.a[d][i] + x[i];
        }
      });
      fan_in = w;
    }

    loss_step(reps, count);

    // Backward, layer by layer from the output: dW and (below the first layer) dL/d in as
    // batched products, then the bias gradient and the activation's backward per repetition.
    for (std::size_t d = L; d-- > 0;) {
      const i64 w = stack.widths[d], in = d == 0 ? stack.n_in : stack.widths[d - 1];
      auto dz_of = [&, d](Rep& r) -> const float* {
        return d == out_layer ? r.dzo.data() : r.dz[d].data();
      };
      batched(
          reps, true, false, w, in, count, dz_of, w, [&](Rep& r) { return layer_in(r, stack, d); },
          in, [&](Rep& r) { return r.grads[2 * d].data_f32(); }, in);
      if (d > 0)
        batched(
            reps, false, false, count, in, w, dz_of, w,
            [&](Rep& r) { return r.params[2 * d].tensor.f32(); }, in,
            [&](Rep& r) {
              return residual_at(stack, d) ? (ensure(r.t, count * in), r.t.data()) : grad_in(r, d);
            },
            in);
      per_rep(reps, [&](Rep& r) {
        cpu::column_sums(r.bias_grad, count, w, dz_of(r), r.grads[2 * d + 1].data_f32());
        if (d == 0) return;
        float* gin = grad_in(r, d);   // dL/d out(d-1)
        if (residual_at(stack, d)) {  // the skip's gradient, then the layer's added to it
          const float* gout = r.g[d].data();
          for (i64 i = 0; i < count * in; ++i) gin[i] = gout[i] + r.t[i];
        }
        const std::size_t h = d - 1;  // the hidden layer below: relu's backward
        cpu::activation_backward(Activation::relu, 0.0f, r.z[h].data(), r.a[h].data(), gin,
                                 r.dz[h].data(), count * in);
      });
    }

    update(reps, step);
  };
  // Step `step` of a group in lanes: step_of's arithmetic lane by lane (the products, bias
  // adds and gradients, the activations and the skips on the lane layout), the loss, metrics
  // and update per repetition as step_of's, on the output and gradients moved out of the lanes.
  const cpu::lanes::Kernels& lk = cpu::lanes::kernels();
  const i64 LN = lk.lanes;
  // by_lanes evaluates the test sets in lanes too where every repetition has one, of the
  // same rows, with the stack's inputs and the loss's kind of targets (else evaluate_full).
  bool lane_test = true;
  for (const Rep& r : reps) {
    const Dataset* t = r.run->evals.test;
    lane_test = lane_test && t && t->size() > 0 && t->size() == reps[0].run->evals.test->size() &&
                t->x.dtype() == DType::f32 && t->x.numel() == t->size() * stack.n_in &&
                t->y.dim(0) == t->size() &&
                takes_class_labels(r.run->cfg.loss) == (t->y.dtype() == DType::i32);
  }
  // The loss, its gradient, the accuracy and the metrics in the lanes too
  // (kernels/cpu/lanes_loss.h) where every repetition's loss is a softmax cross-entropy of one
  // form on logits (no sigmoid output) of at most kChunkValues classes: loss_step's values bit
  // for bit, without moving the outputs out of the lanes and the gradient back in.
  bool lane_loss =
      takes_class_labels(reps[0].run->cfg.loss) && !stack.sigmoid_output && K <= kChunkValues;
  for (const Rep& r : reps) lane_loss = lane_loss && r.run->cfg.loss == reps[0].run->cfg.loss;
  const CrossEntropyForm lane_form = reps[0].run->cfg.loss == LossKind::keras_ce
                                         ? CrossEntropyForm::keras_clipped
                                         : CrossEntropyForm::exact;
  auto into_lanes = [&](LaneGroup& gr, i64 numel, auto&& of, std::vector<float>& dst) {
    ensure(dst, numel * LN);
    gr.src.clear();
    for (Rep& r : gr.reps) gr.src.push_back(of(r));
    cpu::lanes::interleave(lk.lanes, numel, gr.src.data(), static_cast<i64>(gr.reps.size()),
                           dst.data());
  };
  // src_offset: where in src the numel elements start (in floats).
  auto out_of_lanes = [&](LaneGroup& gr, i64 numel, const std::vector<float>& src, auto&& of,
                          i64 src_offset = 0) {
    gr.dst.clear();
    for (Rep& r : gr.reps) gr.dst.push_back(of(r));
    cpu::lanes::deinterleave(lk.lanes, numel, src.data() + src_offset,
                             static_cast<i64>(gr.reps.size()), gr.dst.data());
  };
  // The per-sample metric values of `count` rows, gr.metric_values (kMetricCount, count) in
  // lanes, into each repetition's r.metric_values (kMetricCount, count); metric_series(r,
  // count) points at each metric's values there.
  auto metrics_out_of_lanes = [&](LaneGroup& gr, i64 count) {
    for (int m = 0; m < kMetricCount; ++m)
      out_of_lanes(
          gr, count, gr.metric_values,
          [&, m](Rep& r) {
            ensure(r.metric_values, kMetricCount * count);
            return r.metric_values.data() + m * count;
          },
          m * count * LN);
  };
  auto metric_series = [](const Rep& r, i64 count) {
    std::array<const float*, kMetricCount> v{};
    if (!r.metric_values.empty())
      for (int m = 0; m < kMetricCount; ++m)
        v[static_cast<std::size_t>(m)] = r.metric_values.data() + m * count;
    return v;
  };
  // Every layer's weights and biases into the lanes (after each update).
  auto weights_into_lanes = [&](LaneGroup& gr) {
    i64 fan_in = stack.n_in;
    for (std::size_t d = 0; d < L; ++d) {
      const i64 w = stack.widths[d];
      into_lanes(
          gr, w * fan_in, [d](Rep& r) { return r.params[2 * d].tensor.f32(); }, gr.w[d]);
      into_lanes(
          gr, w, [d](Rep& r) { return r.params[2 * d + 1].tensor.f32(); }, gr.b[d]);
      fan_in = w;
    }
  };
  // layer_in's lanes; x: the rows' inputs in lanes (count, n_in).
  auto lane_in = [&](LaneGroup& gr, const float* x, std::size_t d) -> const float* {
    if (d == 0) return x;
    return residual_at(stack, d - 1) ? gr.sum[d - 1].data() : gr.a[d - 1].data();
  };
  // The forward of `count` rows x (count, n_in) in lanes: step_of's layers, the output
  // layer's pre-activation into gr.zo.
  auto lane_forward = [&](LaneGroup& gr, const float* x, i64 count) {
    i64 fan_in = stack.n_in;
    for (std::size_t d = 0; d < L; ++d) {
      const i64 w = stack.widths[d], m = count * w * LN;
      std::vector<float>& zd = d == out_layer ? gr.zo : gr.z[d];
      ensure(zd, m);
      // The bias add and (hidden layers) relu as the product's epilogue.
      cpu::lanes::Epilogue ep;
      ep.bias = gr.b[d].data();
      if (d != out_layer) {
        ensure(gr.a[d], m);
        ep.relu = gr.a[d].data();
      }
      cpu::lanes::dot(lk, count, w, fan_in, lane_in(gr, x, d), fan_in, 1, gr.w[d].data(), fan_in, 1,
                      zd.data(), w, 1, &ep);
      if (d != out_layer) {
        if (residual_at(stack, d)) {  // ops::add(relu(...), x)
          ensure(gr.sum[d], m);
          const float* in = lane_in(gr, x, d);
          float* s = gr.sum[d].data();
          for (i64 i = 0; i < m; ++i) s[i] = gr.a[d][i] + in[i];
        }
      }
      fan_in = w;
    }
  };
  // The epoch's end of a group whose repetitions all have test sets of one size: the test
  // set's forward in lanes (evaluate_full's arithmetic: the same products, bias adds and
  // activations; rows do not meet in a dense forward, so any row blocking gives the same
  // bits), then each repetition's outputs scored by evaluate_full's own EvalScorer.
  // lane_test_epoch_end's scoring where the loss is in the lanes (lane_loss): evaluate_full's
  // batches of kEvalBatch rows, each lane's loss, correct rows and metrics what data_loss,
  // count_correct and add_metrics give its repetition alone (lanes::softmax_ce), handed to
  // each repetition's EvalScorer. gr.test_zo (nt, K) holds the test set's outputs in lanes,
  // each r.test_out its own.
  auto lane_test_scores = [&](LaneGroup& gr, i64 epoch, i64 nt,
                              std::chrono::steady_clock::time_point t0) {
    if (gr.test_labels.empty()) {  // the test labels never change: into the lanes once
      gr.test_labels.assign(static_cast<std::size_t>(nt * LN), 0);
      for (std::size_t l = 0; l < gr.reps.size(); ++l) {
        const std::int32_t* y = gr.reps[l].run->evals.test->y.i32();
        for (i64 i = 0; i < nt; ++i) gr.test_labels[static_cast<std::size_t>(i * LN) + l] = y[i];
      }
    }
    bool metrics = false;
    for (const Rep& r : gr.reps) metrics = metrics || r.run->cfg.metrics;
    std::vector<EvalScorer> scorers;
    for (const Rep& r : gr.reps) scorers.emplace_back(r.run->cfg.loss, r.run->cfg.metrics);
    for (i64 s = 0; s < nt; s += kEvalBatch) {
      const i64 c = std::min(kEvalBatch, nt - s);
      ensure(gr.dzo, c * K * LN), ensure(gr.probs, c * K * LN);
      if (metrics) ensure(gr.metric_values, kMetricCount * c * LN);
      const cpu::lanes::ClassLoss cl = cpu::lanes::softmax_ce(
          lk.lanes, c, K, gr.test_zo.data() + s * K * LN, gr.test_labels.data() + s * LN, lane_form,
          gr.dzo.data(), gr.probs.data(), metrics ? gr.metric_values.data() : nullptr);
      if (metrics) metrics_out_of_lanes(gr, c);
      for (std::size_t l = 0; l < gr.reps.size(); ++l) {
        Rep& r = gr.reps[l];
        scorers[l].add_scored(c, K, cl.loss[l], cl.correct[l], metric_series(r, c).data(),
                              r.test_out.data() + s * K);
      }
    }
    const double shared =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    per_rep(gr.reps, [&](Rep& r) {
      const auto t1 = std::chrono::steady_clock::now();
      const float penalty = penalty_value(*r.run->model, r.run->cfg);
      const auto l = static_cast<std::size_t>(&r - gr.reps.data());
      DoneEval done{scorers[l].finish(*r.run->evals.test, penalty), 0.0};
      done.seconds =
          shared + std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
      summarize(r, epoch, penalty, &done);
    });
  };
  auto lane_test_epoch_end = [&](LaneGroup& gr, i64 epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    const i64 nt = gr.reps[0].run->evals.test->size();
    if (gr.tx.empty())  // the test rows never change: into the lanes once
      into_lanes(
          gr, nt * stack.n_in, [](Rep& r) { return r.run->evals.test->x.f32(); }, gr.tx);
    weights_into_lanes(gr);
    if (lane_loss) ensure(gr.test_zo, nt * K * LN);
    for (i64 row0 = 0; row0 < nt; row0 += B) {
      const i64 c = std::min(B, nt - row0);
      lane_forward(gr, gr.tx.data() + row0 * stack.n_in * LN, c);
      out_of_lanes(gr, c * K, gr.zo, [&](Rep& r) {
        ensure(r.test_out, nt * K);
        return r.test_out.data() + row0 * K;
      });
      if (lane_loss) std::copy_n(gr.zo.data(), c * K * LN, gr.test_zo.data() + row0 * K * LN);
    }
    if (lane_loss) {
      lane_test_scores(gr, epoch, nt, t0);
      return;
    }
    const double shared =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    per_rep(gr.reps, [&](Rep& r) {
      const auto t1 = std::chrono::steady_clock::now();
      const TrainConfig& cfg = r.run->cfg;
      const Dataset& test = *r.run->evals.test;
      const float* outs = r.test_out.data();  // (nt, K) the net's outputs
      std::vector<float> sig;
      if (stack.sigmoid_output) {
        sig.resize(static_cast<std::size_t>(nt * K));
        cpu::activation_forward(Activation::sigmoid, 0.0f, outs, sig.data(), nt * K);
        outs = sig.data();
      }
      const float penalty = penalty_value(*r.run->model, cfg);
      EvalScorer scorer(cfg.loss, cfg.metrics);
      std::vector<i64> rows;
      std::vector<float> probs;
      for (i64 s = 0; s < nt; s += kEvalBatch) {
        const i64 c = std::min(kEvalBatch, nt - s);
        rows.resize(static_cast<std::size_t>(c));
        for (i64 i = 0; i < c; ++i) rows[static_cast<std::size_t>(i)] = s + i;
        const Tensor yb = gather_rows(test.y, rows.data(), c);
        Tensor out = Tensor::empty({c, K});
        std::copy(outs + s * K, outs + (s + c) * K, out.data_f32());
        probs.resize(static_cast<std::size_t>(c * K));
        const float loss = data_loss(r, cfg.loss, c, K, out.f32(), yb, nullptr, probs.data());
        scorer.add(out, yb, loss, takes_class_labels(cfg.loss) ? probs.data() : nullptr);
      }
      DoneEval done{scorer.finish(test, penalty), 0.0};
      done.seconds =
          shared + std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
      summarize(r, epoch, penalty, &done);
    });
  };
  auto lane_loss_step = [&](LaneGroup& gr, i64 count) {
    const std::span<Rep> reps = gr.reps;
    // The batch's labels straight from the training sets (prepare gathers none here).
    gr.labels.assign(static_cast<std::size_t>(count * LN), 0);  // padding lanes: label 0
    for (std::size_t l = 0; l < reps.size(); ++l) {
      const std::int32_t* y = reps[l].run->train->y.i32();
      const i64* rows = gr.orders[l];
      for (i64 i = 0; i < count; ++i) gr.labels[static_cast<std::size_t>(i * LN) + l] = y[rows[i]];
    }
    bool metrics = false;
    for (const Rep& r : reps) metrics = metrics || r.run->cfg.metrics;
    ensure(gr.dzo, count * K * LN), ensure(gr.probs, count * K * LN);
    if (metrics) ensure(gr.metric_values, kMetricCount * count * LN);
    const cpu::lanes::ClassLoss cl = cpu::lanes::softmax_ce(
        lk.lanes, count, K, gr.zo.data(), gr.labels.data(), lane_form, gr.dzo.data(),
        gr.probs.data(), metrics ? gr.metric_values.data() : nullptr);
    for (std::size_t l = 0; l < reps.size(); ++l) {  // record_batch's bookkeeping
      Rep& r = reps[l];
      if (!std::isfinite(cl.loss[l])) ++r.result.nonfinite_loss_steps;
      r.prog.batch_losses.push_back(total_loss(r, cl.loss[l]));
      r.prog.correct += cl.correct[l];
    }
    if (!metrics) return;
    metrics_out_of_lanes(gr, count);
    for (Rep& r : reps) {
      if (!r.run->cfg.metrics) continue;
      r.prog.metrics.append(metric_series(r, count).data(), count, K);
    }
  };
  auto lane_step = [&](LaneGroup& gr, i64 step) {
    const i64 first = (step % spe) * B, count = std::min(B, n - first);
    const std::span<Rep> reps = gr.reps;
    // The inputs go from each training set's rows straight into the lanes (lanes::gather_rows):
    // gathering a batch per repetition and then interleaving it moved every input twice more
    // (a quarter of an mnist run's time; 7% of a wine_quality_white run's).
    prepare(reps, step, false, !lane_loss);
    ensure(gr.x, count * stack.n_in * LN);
    gr.xs.clear(), gr.orders.clear();
    for (const Rep& r : reps) {
      gr.xs.push_back(r.run->train->x.f32());
      gr.orders.push_back(r.order.data() + first);
    }
    cpu::lanes::gather_rows(lk.lanes, count, stack.n_in, gr.xs.data(), gr.orders.data(),
                            static_cast<i64>(reps.size()), gr.x.data());
    weights_into_lanes(gr);

    lane_forward(gr, gr.x.data(), count);
    if (lane_loss) {
      lane_loss_step(gr, count);
    } else {
      out_of_lanes(gr, count * K, gr.zo, [](Rep& r) { return r.zo.data_f32(); });
      loss_step(reps, count);
      into_lanes(
          gr, count * K, [](Rep& r) { return r.dzo.data(); }, gr.dzo);
    }

    // Backward.
    for (std::size_t d = L; d-- > 0;) {
      const i64 w = stack.widths[d], in = d == 0 ? stack.n_in : stack.widths[d - 1];
      const float* dz = d == out_layer ? gr.dzo.data() : gr.dz[d].data();
      ensure(gr.dw, w * in * LN);
      cpu::lanes::dot(lk, w, in, count, dz, 1, w, lane_in(gr, gr.x.data(), d), 1, in, gr.dw.data(),
                      in, 1);
      out_of_lanes(gr, w * in, gr.dw, [d](Rep& r) { return r.grads[2 * d].data_f32(); });
      ensure(gr.db, w * LN);
      lk.column_sums(count, w, dz, gr.db.data());
      out_of_lanes(gr, w, gr.db, [d](Rep& r) { return r.grads[2 * d + 1].data_f32(); });
      if (d == 0) continue;
      const std::size_t h = d - 1;  // the hidden layer below
      const i64 m = count * in * LN;
      ensure(gr.g[h], m), ensure(gr.dz[h], m);
      float* gin = gr.g[h].data();  // dL/d out(h)
      if (!residual_at(stack, d) && !residual_at(stack, h)) {
        // No skip needs dL/d out(h): relu's backward as the product's epilogue, straight
        // into dL/dz(h).
        cpu::lanes::Epilogue ep;
        ep.relu_grad_of = gr.z[h].data();
        cpu::lanes::dot(lk, count, in, w, dz, w, 1, gr.w[d].data(), 1, in, gr.dz[h].data(), in, 1,
                        &ep);
        continue;
      }
      float* prod = residual_at(stack, d) ? (ensure(gr.t, m), gr.t.data()) : gin;
      cpu::lanes::dot(lk, count, in, w, dz, w, 1, gr.w[d].data(), 1, in, prod, in, 1);
      if (residual_at(stack, d)) {  // the skip's gradient, then the layer's added to it
        const float* gout = gr.g[d].data();
        for (i64 i = 0; i < m; ++i) gin[i] = gout[i] + gr.t[i];
      }
      cpu::activation_backward(Activation::relu, 0.0f, gr.z[h].data(), gr.a[h].data(), gin,
                               gr.dz[h].data(), m);
    }
    const bool epoch_end = (step + 1) % spe == 0;
    update(reps, step, !(epoch_end && lane_test));
    if (epoch_end && lane_test) lane_test_epoch_end(gr, step / spe);
  };
  if (order == BatchOrder::by_lanes && !lanes_apply(reps)) order = BatchOrder::by_repetition;
  std::vector<LaneGroup> groups;
  if (order == BatchOrder::by_lanes) {
    // As few groups as the lanes allow, of sizes that differ by at most one (30 repetitions
    // in 8 lanes: 8, 8, 7, 7, not 8, 8, 8, 6): a group's lane work is the same however full
    // it is, its per-repetition work (loss, metrics, update) is not, and the pool's threads
    // take whole groups, so even groups even out the threads.
    const std::size_t R = reps.size(), per = static_cast<std::size_t>(LN);
    const std::size_t count = (R + per - 1) / per, base = R / count, extra = R % count;
    for (std::size_t gi = 0, g0 = 0; gi < count; ++gi) {
      const std::size_t size = base + (gi < extra ? 1 : 0);
      LaneGroup& gr = groups.emplace_back();
      gr.reps = std::span<Rep>(reps).subspan(g0, size);
      g0 += size;
      gr.w.resize(L), gr.b.resize(L);
      gr.z.resize(L - 1), gr.a.resize(L - 1), gr.sum.resize(L - 1), gr.g.resize(L - 1),
          gr.dz.resize(L - 1);
    }
  }

  for (i64 epoch = start_epoch; epoch < runs[0].cfg.epochs; ++epoch) {
    const i64 first_step = epoch * spe, end_step = first_step + spe;
    // The epoch's end of repetition i: its summary into its result, and the callback.
    auto finish = [&](std::size_t i) {
      reps[i].result.epochs.push_back(reps[i].stats);
      if (on_epoch) on_epoch(i, reps[i].result.epochs.back());
    };
    if (order == BatchOrder::by_layer) {
      for (i64 step = first_step; step < end_step; ++step) step_of(reps, step);
      cpu::parallel_for(static_cast<i64>(reps.size()),
                        [&](i64 i) { finish(static_cast<std::size_t>(i)); });
    } else if (order == BatchOrder::by_lanes) {  // each task a whole epoch of one group
      cpu::parallel_for(static_cast<i64>(groups.size()), [&](i64 gi) {
        LaneGroup& gr = groups[static_cast<std::size_t>(gi)];
        for (i64 step = first_step; step < end_step; ++step) lane_step(gr, step);
        const auto g0 = static_cast<std::size_t>(gr.reps.data() - reps.data());
        for (std::size_t i = 0; i < gr.reps.size(); ++i) finish(g0 + i);
      });
    } else {  // by repetition: each task runs a whole epoch of one, its state staying in cache
      cpu::parallel_for(static_cast<i64>(reps.size()), [&](i64 i) {
        const std::span<Rep> one(&reps[static_cast<std::size_t>(i)], 1);
        for (i64 step = first_step; step < end_step; ++step) step_of(one, step);
        finish(static_cast<std::size_t>(i));
      });
    }
    t_epoch = std::chrono::steady_clock::now();
    if (checkpoints && epoch + 1 < runs[0].cfg.epochs) {
      const bool stop = epoch + 1 == checkpoints->stop_after_epochs;
      if (stop ||
          std::chrono::duration<double>(t_epoch - last_write).count() >= checkpoints->every_seconds)
        write_checkpoints(epoch + 1);
      if (stop) {
        for (Rep& r : reps) r.result.stopped_early = true;
        break;
      }
    }
  }
  std::vector<TrainResult> results;
  for (Rep& r : reps) {
    r.result.weight_hash = weight_hash(*r.run->model);
    results.push_back(std::move(r.result));
  }
  return results;
}

}  // namespace detdl::nets
