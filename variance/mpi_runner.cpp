// The MPI runner (variance/mpi_runner.h). Messages between rank 0 and a worker rank:
//   worker -> 0   kReady   (empty): the first request
//                 kResult  row (int64), record length (int64), record (JSON text),
//                          weight count (int64), weights (float): a finished row, and a
//                          request for the next
//                 kFailed  row (int64), message: a row that threw, and a request
//   0 -> worker   kAssign  row (int64): the next row to run (an index into the plan)
//                 kStop    (empty): nothing left
#include "variance/mpi_runner.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <vector>

#include "nets/experiment.h"
#include "variance/store.h"

#if DETDL_HAVE_MPI
// The C API only: OpenMPI's (deprecated) C++ bindings would need libmpi_cxx.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace detdl::variance {

#if !DETDL_HAVE_MPI

bool mpi_available() { return false; }

RunnerSummary run_study_mpi(const Study&, const std::string&, const RunnerOptions&) {
  throw std::runtime_error(
      "--mpi: this detdl was built without MPI (apt-get install libopenmpi-dev openmpi-bin, "
      "then configure and build again)");
}

#else

namespace {

enum Tag : int { kReady = 1, kResult = 2, kFailed = 3, kAssign = 4, kStop = 5 };

void put_i64(std::vector<char>& b, std::int64_t v) {
  const std::size_t at = b.size();
  b.resize(at + sizeof v);
  std::memcpy(b.data() + at, &v, sizeof v);
}
std::int64_t get_i64(const std::vector<char>& b, std::size_t& at) {
  if (at + sizeof(std::int64_t) > b.size()) throw std::runtime_error("--mpi: truncated message");
  std::int64_t v;
  std::memcpy(&v, b.data() + at, sizeof v);
  at += sizeof v;
  return v;
}

void report(const PlanRow& row, const std::string& hash, double secs, int rank) {
  std::printf("  done  %-20s rep %3lld  key %s  hash %s  %.1fs  (rank %d)\n", row.setting.c_str(),
              static_cast<long long>(row.repetition), row.key.c_str(), hash.c_str(), secs, rank);
  std::fflush(stdout);
}

// Ranks 1..N-1: run what rank 0 hands out until it says stop.
void serve_rows(const std::vector<const PlanRow*>& plan, const RunnerOptions& opt) {
  const nets::RunOptions ro = run_options(opt);
  MPI_Send(nullptr, 0, MPI_BYTE, 0, kReady, MPI_COMM_WORLD);
  for (;;) {
    std::int64_t index = -1;
    MPI_Status st;
    MPI_Recv(&index, 1, MPI_INT64_T, 0, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
    if (st.MPI_TAG == kStop) return;
    std::vector<char> msg;
    put_i64(msg, index);
    int tag = kResult;
    try {
      if (index < 0 || index >= static_cast<std::int64_t>(plan.size()))
        throw std::runtime_error("row " + std::to_string(index) + " is not in this rank's plan");
      const nets::RunOutput out =
          nets::run_experiment(plan[static_cast<std::size_t>(index)]->experiment, ro);
      const std::string record = out.record.dump();
      put_i64(msg, static_cast<std::int64_t>(record.size()));
      msg.insert(msg.end(), record.begin(), record.end());
      put_i64(msg, static_cast<std::int64_t>(out.final_weights.size()));
      const auto* w = reinterpret_cast<const char*>(out.final_weights.data());
      msg.insert(msg.end(), w, w + out.final_weights.size() * sizeof(float));
    } catch (const std::exception& e) {
      tag = kFailed;
      const std::string what = e.what();
      msg.insert(msg.end(), what.begin(), what.end());
    }
    MPI_Send(msg.data(), static_cast<int>(msg.size()), MPI_BYTE, 0, tag, MPI_COMM_WORLD);
  }
}

// Rank 0: hand out rows, store results.
RunnerSummary coordinate(const Study& study, const std::string& store_path,
                         const std::vector<const PlanRow*>& plan, const RunnerOptions& opt,
                         int ranks) {
  RunnerSummary sum;
  sum.planned = static_cast<std::int64_t>(plan.size());
  Store store(store_path);
  store.put_study(study.name, study.spec);
  const auto done = store.run_keys(study.name);
  std::deque<std::int64_t> pending;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    if (done.count(plan[i]->key))
      ++sum.stored;
    else if (opt.max_runs < 0 || static_cast<std::int64_t>(pending.size()) < opt.max_runs)
      pending.push_back(static_cast<std::int64_t>(i));
  }
  if (!opt.quiet)
    std::printf("study %s: %lld rows, %lld stored, %zu to run on %d rank(s) (MPI)\n",
                study.name.c_str(), static_cast<long long>(sum.planned),
                static_cast<long long>(sum.stored), pending.size(), std::max(1, ranks - 1));
  std::fflush(stdout);
  const auto store_result = [&](const PlanRow& row, const nlohmann::json& record,
                                const std::vector<float>& weights, double secs, int rank) {
    const bool stored =
        store.put_run(row.key, study.name, row.setting, row.repetition, record, weights);
    ++sum.started;
    if (stored)
      ++sum.ran;
    else
      ++sum.duplicates;
    if (!opt.quiet) report(row, record.value("weight_hash", ""), secs, rank);
  };
  if (ranks == 1) {  // no workers: rank 0 runs the rows itself
    const nets::RunOptions ro = run_options(opt);
    for (const std::int64_t i : pending) {
      const PlanRow& row = *plan[static_cast<std::size_t>(i)];
      const auto t0 = std::chrono::steady_clock::now();
      try {
        const nets::RunOutput out = nets::run_experiment(row.experiment, ro);
        store_result(row, out.record, out.final_weights,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                     0);
      } catch (const std::exception& e) {
        ++sum.started, ++sum.failed;
        std::fprintf(stderr, "  FAILED %s rep %lld (key %s): %s\n", row.setting.c_str(),
                     static_cast<long long>(row.repetition), row.key.c_str(), e.what());
      }
    }
    return sum;
  }
  std::vector<std::chrono::steady_clock::time_point> since(static_cast<std::size_t>(ranks));
  int active = ranks - 1;
  while (active > 0) {
    MPI_Status st;
    MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
    int bytes = 0;
    MPI_Get_count(&st, MPI_BYTE, &bytes);
    std::vector<char> msg(static_cast<std::size_t>(bytes));
    MPI_Recv(msg.data(), bytes, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD,
             MPI_STATUS_IGNORE);
    const int rank = st.MPI_SOURCE;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                      since[static_cast<std::size_t>(rank)])
                            .count();
    if (st.MPI_TAG == kResult || st.MPI_TAG == kFailed) {
      std::size_t at = 0;
      const std::int64_t index = get_i64(msg, at);
      if (index < 0 || index >= static_cast<std::int64_t>(plan.size()))
        throw std::runtime_error("--mpi: rank " + std::to_string(rank) + " sent row " +
                                 std::to_string(index) + ", which is not in the plan");
      const PlanRow& row = *plan[static_cast<std::size_t>(index)];
      if (st.MPI_TAG == kFailed) {
        ++sum.started, ++sum.failed;
        std::fprintf(stderr, "  FAILED %s rep %lld (key %s) on rank %d: %s\n", row.setting.c_str(),
                     static_cast<long long>(row.repetition), row.key.c_str(), rank,
                     std::string(msg.begin() + at, msg.end()).c_str());
      } else {
        const std::int64_t len = get_i64(msg, at);
        if (len < 0 || at + static_cast<std::size_t>(len) > msg.size())
          throw std::runtime_error("--mpi: truncated record from rank " + std::to_string(rank));
        const nlohmann::json record =
            nlohmann::json::parse(msg.begin() + static_cast<std::ptrdiff_t>(at),
                                  msg.begin() + static_cast<std::ptrdiff_t>(at + len));
        at += static_cast<std::size_t>(len);
        const std::int64_t count = get_i64(msg, at);
        if (count < 0 || at + static_cast<std::size_t>(count) * sizeof(float) != msg.size())
          throw std::runtime_error("--mpi: truncated weights from rank " + std::to_string(rank));
        std::vector<float> weights(static_cast<std::size_t>(count));
        std::memcpy(weights.data(), msg.data() + at, weights.size() * sizeof(float));
        store_result(row, record, weights, secs, rank);
      }
    }
    if (pending.empty()) {
      MPI_Send(nullptr, 0, MPI_INT64_T, rank, kStop, MPI_COMM_WORLD);
      --active;
    } else {
      const std::int64_t next = pending.front();
      pending.pop_front();
      since[static_cast<std::size_t>(rank)] = std::chrono::steady_clock::now();
      MPI_Send(&next, 1, MPI_INT64_T, rank, kAssign, MPI_COMM_WORLD);
    }
  }
  store.checkpoint();  // every run in the .sqlite file itself (Store::checkpoint)
  return sum;
}

}  // namespace

bool mpi_available() { return true; }

RunnerSummary run_study_mpi(const Study& study, const std::string& store_path,
                            const RunnerOptions& opt) {
  MPI_Init(nullptr, nullptr);
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  RunnerSummary sum;
  try {
    // Every rank plans the same rows in the same order (the plan is a pure function of the
    // study), so a row travels as its index.
    const std::vector<PlanRow> full = make_plan(study);
    const std::vector<const PlanRow*> plan = runner_rows(full, opt);
    if (rank == 0)
      sum = coordinate(study, store_path, plan, opt, ranks);
    else
      serve_rows(plan, opt);
  } catch (const std::exception& e) {
    // One rank cannot go on: end them all (mpirun reports it); the store keeps every row
    // stored so far, and the same command resumes.
    std::fprintf(stderr, "detdl (rank %d): %s\n", rank, e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return sum;
}

#endif

}  // namespace detdl::variance
