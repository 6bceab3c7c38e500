// Checkpoints in the safetensors format (https://github.com/huggingface/safetensors):
// an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape
// and byte range, then the raw little-endian data. detdl adds to "__metadata__" a CRC-32
// of the data section ("detdl.crc32") so that a corrupt file is refused, not loaded.
// Files are written to "<path>.tmp" and renamed, so a run that dies mid-write never
// destroys the previous checkpoint.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace detdl {

inline constexpr const char* kDataCrcKey = "detdl.crc32";
inline constexpr const char* kMetaCrcKey = "detdl.meta_crc32";

struct TensorFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in file order
  std::map<std::string, std::string> metadata;          // string -> string, as the format says

  const Tensor* find(const std::string& name) const;
};

void save_safetensors(const std::string& path, const TensorFile& file);

// Throws std::runtime_error naming the file and what is wrong (missing, truncated, bad
// header, offsets out of range, unsupported dtype, CRC mismatch of the data or of the
// metadata). Files without the CRCs (other tools' safetensors) load unchecked; the trainer
// refuses to resume from one (engine/train.h).
TensorFile load_safetensors(const std::string& path);

}  // namespace detdl
