// Writing a file so that no reader, and no later run, ever sees half of it: the bytes go
// to a temporary file with a unique name in the destination's folder (mkstemp), are
// flushed to disk, and the temporary is renamed over the destination. Two processes
// writing one path never share a temporary; a process that dies mid-write leaves the
// previous file whole (and at worst a stray "<path>.tmp.XXXXXX").
#pragma once
#include <string>

namespace detdl {

// Throws std::runtime_error starting with `what` (e.g. "--record out.json") and naming the
// file when the folder is missing, the file cannot be created or written, or the rename fails.
void write_file_atomically(const std::string& path, const std::string& bytes,
                           const std::string& what);

// Checks, before any work is done, that `path` can be written: its folder exists and is a
// writable directory, and (unless `overwrite`) no file is there yet. Throws
// std::invalid_argument starting with `what` otherwise. Nothing is created.
void check_output_path(const std::string& path, bool overwrite, const std::string& what);

}  // namespace detdl
