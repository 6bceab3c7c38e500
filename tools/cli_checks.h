// Checks of a flag's text before CLI11 converts it, so that a bad value gets a message that
// says what was expected ("--epochs: expected an integer, got 'abc'") and an overflowing
// one is refused rather than clamped. Ranges belong to the one validation path
// (nets::experiment_from_json); these only check the syntax, or a range where the flag is
// not an experiment field.
#pragma once
#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdint>
#include <string>

namespace detdl::tools {

// An integer as written: an optional minus and digits, nothing else, within int64.
inline CLI::Validator integer_text(std::int64_t lo = INT64_MIN, std::int64_t hi = INT64_MAX) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        std::int64_t v = 0;
        const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
        if (r.ec == std::errc::result_out_of_range) return "integer out of range, got '" + s + "'";
        if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size())
          return "expected an integer, got '" + s + "'";
        if (v < lo || v > hi)
          return "expected " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " + s;
        return "";
      },
      "INT", "integer");
}

// A number as written (decimal or exponent form; nan and inf are read, and refused by the
// validation path with the field's range).
inline CLI::Validator number_text() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        double v = 0;
        const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
        if (r.ec == std::errc::result_out_of_range) return "number out of range, got '" + s + "'";
        if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size())
          return "expected a number, got '" + s + "'";
        return "";
      },
      "NUM", "number");
}

}  // namespace detdl::tools
