// Writes the seed corpora of the fuzz harnesses (fuzz/corpus/<harness>/): small valid
// files made with the project's own writers, and slightly broken variants of them. Run by
// `scripts/fuzz.sh --make-corpus`; the output is committed, so this only needs re-running
// when a format changes. Usage: detdl_fuzz_make_corpus <corpus-dir>
#include <sqlite3.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "nets/data/cifar.h"
#include "nets/experiment.h"
#include "variance/store.h"

namespace fs = std::filesystem;
using nlohmann::json;
using Bytes = std::string;

namespace {

fs::path root;

void put(const std::string& harness, const std::string& name, const Bytes& bytes) {
  fs::create_directories(root / harness);
  std::ofstream(root / harness / name, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

Bytes read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

Bytes gzip(const Bytes& plain) {
  const fs::path tmp = fs::temp_directory_path() / "detdl-make-corpus.gz";
  gzFile f = gzopen(tmp.c_str(), "wb9");
  gzwrite(f, plain.data(), static_cast<unsigned>(plain.size()));
  gzclose(f);
  Bytes out = read(tmp);
  fs::remove(tmp);
  return out;
}

Bytes idx(const std::vector<std::uint32_t>& dims, std::uint8_t type = 0x08) {
  Bytes b{0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  std::size_t n = 1;
  for (std::uint32_t d : dims) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<char>(d >> s));
    n *= d;
  }
  for (std::size_t i = 0; i < n; ++i) b.push_back(static_cast<char>(i * 37 % 256));
  return b;
}

void make_idx() {
  put("fuzz_idx", "labels-1d", idx({6}));
  put("fuzz_idx", "images-3d", idx({2, 3, 3}));
  put("fuzz_idx", "images-3d.gz", gzip(idx({2, 4, 4})));
  put("fuzz_idx", "eight-dims", idx({1, 1, 1, 1, 1, 1, 2, 2}));
  put("fuzz_idx", "empty-dim", idx({0, 28, 28}));
  Bytes b = idx({2, 3, 3});
  put("fuzz_idx", "truncated-data", b.substr(0, b.size() - 1));
  put("fuzz_idx", "trailing-byte", b + "x");
  put("fuzz_idx", "truncated-header", b.substr(0, 9));
  put("fuzz_idx", "type-0x0d", idx({2}, 0x0d));
  Bytes gz = gzip(idx({3, 5, 5}));
  put("fuzz_idx", "truncated-gzip", gz.substr(0, gz.size() - 6));
}

// A CIFAR record: label byte(s), then 3072 pixels (a gradient, so it compresses).
Bytes cifar_record(const std::vector<std::uint8_t>& labels) {
  Bytes r(labels.begin(), labels.end());
  for (int i = 0; i < 3072; ++i) r.push_back(static_cast<char>(i % 32 * 8));
  return r;
}

void make_cifar() {
  // First byte: 0 CIFAR-10, 1 CIFAR-100 fine, 2 CIFAR-100 coarse.
  put("fuzz_cifar", "cifar10-1", "\x00" + cifar_record({3}));
  put("fuzz_cifar", "cifar100-fine-2.gz",
      "\x01" + gzip(cifar_record({4, 99}) + cifar_record({19, 0})));
  put("fuzz_cifar", "cifar100-coarse-1", "\x02" + cifar_record({19, 55}));
  put("fuzz_cifar", "cifar10-bad-label", Bytes(1, '\0') + cifar_record({10}));
  put("fuzz_cifar", "cifar10-truncated", Bytes(1, '\0') + cifar_record({1}).substr(0, 3000));
  put("fuzz_cifar", "empty", Bytes(1, '\2'));
}

void make_pmlb() {
  // First byte: 0 inferred, 1 regression, 2 binary, 3 multiclass.
  const Bytes small =
      "a\tb\tcolor\ttarget\n1\t0.5\tred\t0\n2\t0.5\tblue\t1\n3\t1.5\tred\t0\n2\t2.5\tgreen\t1\n";
  put("fuzz_pmlb", "binary", "\x00" + small);
  put("fuzz_pmlb", "binary.gz", "\x02" + gzip(small));
  Bytes reg = "x\ty\ttarget\n";
  for (int i = 0; i < 24; ++i)
    reg += std::to_string(i * 1.25) + "\t" + std::to_string(i % 3) + "\t" +
           std::to_string(i * i - 7) + "e-1\n";
  put("fuzz_pmlb", "regression", Bytes(1, '\0') + reg);
  put("fuzz_pmlb", "regression-forced", "\x01" + reg);
  put("fuzz_pmlb", "multiclass",
      Bytes(1, '\3') + "f\tg\ttarget\n+1\t x \tcat\n6.0\ty\tdog\n6\tz\tbird\r\n-1e300\tx\tcat\n");
  put("fuzz_pmlb", "ragged", Bytes(1, '\0') + "a\ttarget\n1\t2\t3\n");
  put("fuzz_pmlb", "nan-cell", Bytes(1, '\0') + "a\ttarget\n1\t0\nnan\t1\n3\t1\n");
  put("fuzz_pmlb", "empty-cell", Bytes(1, '\0') + "a\ttarget\n1\t0\n\t1\n");
  put("fuzz_pmlb", "no-target", Bytes(1, '\0') + "a\tb\n1\t0\n2\t1\n");
}

const char* kStudyToml = R"(# a small study
name = "fuzz"
repetitions = 2
selection = ["best_loss", "last"]
description = "seed"

[experiment]
net = "mlp:16"
data = "blobs"
epochs = 3
batch_size = 64
optimizer = { kind = "sgd", momentum = 0.9 }
schedule = { lr = 0.05 }

[grid]
"schedule.lr" = [0.1, 0.01]
batch_size = [32, 64]

[[setting]]
name = "fixed"

[[setting]]
name = "fast"
level = "fast"
threads = 2
fast_ops = ["matmul"]

[[setting]]
name = "varied"
vary = ["all"]
experiment = { epochs = 2 }
)";

void make_studies() {
  put("fuzz_study_toml", "grid.toml", kStudyToml);
  put("fuzz_study_toml", "preset.toml",
      "name = \"p\"\n[experiment]\npreset = \"lenet5\"\nepochs = 1\n\n[[setting]]\nname = "
      "\"a\"\nvary = [\"order\", \"init\"]\n"
      "device = \"cpu\"\nimplementation = \"own\"\n");
  put("fuzz_study_toml", "bad-level.toml",
      "name = \"b\"\n[[setting]]\nname = \"a\"\nlevel = \"fastest\"\n");
  put("fuzz_study_toml", "date.toml",
      "name = \"d\"\nwhen = 1979-05-27T07:32:00Z\n[[setting]]\nname = \"a\"\n");
  put("fuzz_study_toml", "syntax.toml", "name = \"s\"\n[[setting]\nname = 'a'\n");

  const json grid = {
      {"name", "fuzz"},
      {"repetitions", 2},
      {"selection", {"best_acc"}},
      {"experiment",
       {{"net", "mlp:16"}, {"data", "blobs"}, {"epochs", 2}, {"schedule", {{"lr", 0.05}}}}},
      {"grid", {{"schedule.lr", {0.1, 0.01}}, {"threads", {1, 2}}}},
      {"setting", {{{"name", "a"}}, {{"name", "b"}, {"level", "repeatable"}, {"vary", {"all"}}}}}};
  put("fuzz_study_json", "grid.json", grid.dump(1));
  put("fuzz_study_json", "preset.json",
      json{{"name", "p"},
           {"experiment", {{"preset", "resnet20"}}},
           {"setting", {{{"name", "x"}, {"fast_ops", {"conv_wgrad"}}}}}}
          .dump());
  put("fuzz_study_json", "unknown-field.json", R"({"name":"u","settings":[{"name":"a"}]})");
  put("fuzz_study_json", "not-json.json", "{\"name\": \"n\", \"setting\": [");
}

void make_experiments() {
  for (const std::string& name : detdl::nets::preset_names())
    put("fuzz_experiment_json", "preset-" + name + ".json",
        detdl::nets::to_json(detdl::nets::preset(name)).dump(1));
  json e = detdl::nets::to_json(detdl::nets::Experiment{});
  put("fuzz_experiment_json", "default.json", e.dump());
  put("fuzz_experiment_json", "empty.json", "{}");
  put("fuzz_experiment_json", "bad-type.json", R"({"epochs": "three"})");
  put("fuzz_experiment_json", "unknown.json", R"({"epoch": 3})");
  put("fuzz_experiment_json", "not-object.json", "[1, 2]");
}

void make_safetensors() {
  const fs::path p = fs::temp_directory_path() / "detdl-make-corpus.safetensors";
  detdl::TensorFile f;
  f.tensors.emplace_back("w", detdl::Tensor::from_vector({2, 3}, {1, 2, 3, 4, 5, 6}));
  f.tensors.emplace_back("step", detdl::Tensor::from_vector_i32({1}, {7}));
  f.tensors.emplace_back("scalar", detdl::Tensor::from_vector({}, {0.5f}));
  f.metadata["format"] = "pt";
  detdl::save_safetensors(p.string(), f);
  const Bytes good = read(p);
  put("fuzz_safetensors", "three-tensors", good);
  Bytes bad_crc = good;
  bad_crc.back() ^= 1;
  put("fuzz_safetensors", "bad-crc", bad_crc);
  put("fuzz_safetensors", "truncated", good.substr(0, good.size() - 4));
  detdl::save_safetensors(p.string(), detdl::TensorFile{});
  put("fuzz_safetensors", "no-tensors", read(p));
  // No CRC in the metadata (files from other writers): offsets and shapes are all there is.
  const Bytes header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[1,1],"data_offsets":[8,12]}})";
  Bytes len(8, '\0');
  len[0] = static_cast<char>(header.size());
  put("fuzz_safetensors", "foreign", len + header + Bytes(12, '\1'));
  fs::remove(p);
}

json metrics(double base) {
  json m = json::object();
  int i = 0;
  for (auto name : detdl::variance::kMetricNames) m[std::string(name)] = base + 0.01 * i++;
  return m;
}

// A run record of the documented shape (as in tests/variance/test_store.cpp), kept small.
json record(int epochs, int classes, int rows, bool validation) {
  json r;
  r["record_version"] = 1;
  r["detdl_version"] = "0.1.0";
  r["experiment"] = {
      {"net", "mlp:16"}, {"data", "blobs"}, {"epochs", epochs}, {"level", "portable"}};
  r["host"] = {{"name", "box"}, {"cpu", "cpu"}, {"threads", 1}};
  r["started_at"] = "2026-01-01T00:00:00Z";
  r["epochs"] = json::array();
  for (int e = 1; e <= epochs; ++e) {
    json ep = {{"epoch", e},
               {"seconds", 0.5 * e},
               {"weight_hash", "00000000000000" + std::to_string(10 + e)},
               {"train", metrics(1.0 / e)},
               {"test", metrics(2.0 / e)}};
    if (validation) ep["validation"] = metrics(3.0 / e);
    json cls = json::array();
    for (int c = 0; c < classes; ++c) cls.push_back(0.5 + 0.01 * c);
    ep["test_per_class_accuracy"] = cls;
    std::vector<int> pred(static_cast<std::size_t>(rows));
    for (int i = 0; i < rows; ++i) pred[static_cast<std::size_t>(i)] = (i * 7 + e) % classes;
    ep["test_predictions"] = pred;
    r["epochs"].push_back(ep);
  }
  r["timings"] = {{"total_seconds", 1.5}};
  r["steps"] = 12;
  r["weight_hash"] = "abcdef0123456789";
  std::vector<int> pred(static_cast<std::size_t>(rows));
  for (int i = 0; i < rows; ++i) pred[static_cast<std::size_t>(i)] = i % classes;
  r["test_predictions"] = pred;
  return r;
}

// Rewrites an SQLite file with 512-byte pages and the rollback journal, so the seed is a
// few KB (the store switches it back to WAL when it opens it).
void shrink(const fs::path& p) {
  sqlite3* db = nullptr;
  sqlite3_open(p.c_str(), &db);
  sqlite3_exec(db, "PRAGMA journal_mode = DELETE; PRAGMA page_size = 512; VACUUM;", nullptr,
               nullptr, nullptr);
  sqlite3_close(db);
}

void make_store() {
  const fs::path p = fs::temp_directory_path() / "detdl-make-corpus.sqlite";
  fs::remove(p);
  {
    detdl::variance::Store s(p.string());
    s.put_study("st", json{{"name", "st"}});
    s.put_run("k1", "st", "a", 0, record(2, 3, 5, true), {1.0f, 2.0f, 3.0f});
    s.put_run("k2", "st", "b", 1, record(1, 2, 4, false));
  }
  shrink(p);
  put("fuzz_store", "two-runs.sqlite", read(p));
  fs::remove(p);
  { detdl::variance::Store s(p.string()); }
  shrink(p);
  put("fuzz_store", "empty-store.sqlite", read(p));
  fs::remove(p);
  put("fuzz_store", "zero-bytes", "");
  put("fuzz_store", "not-sqlite", "SQLite format 2\0 this is not a database");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: detdl_fuzz_make_corpus <corpus-dir>\n";
    return 2;
  }
  root = argv[1];
  make_idx();
  make_cifar();
  make_pmlb();
  make_studies();
  make_experiments();
  make_safetensors();
  make_store();
  return 0;
}
