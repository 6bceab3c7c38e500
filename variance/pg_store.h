// PostgreSQL stores (libpq from Debian's libpq-dev): a database holding the SQLite store's
// tables, with the same names, columns and keys (its schema is generated from the SQLite
// schema: TEXT -> TEXT, INTEGER -> BIGINT, REAL -> DOUBLE PRECISION, BLOB -> BYTEA, an
// untyped column (the seeds: integers, or text past INT64_MAX) -> TEXT, read back with its
// SQLite type). A database is named by a URL, postgresql://... or postgres://... (libpq's
// connection URI).
//
// What exists so far: moving rows between SQLite and PostgreSQL either way, with `study
// merge`'s rules (variance/store.h, Store::merge_from), and reading a database through a
// local SQLite copy (`study table`, `report`). Running a study straight into a database
// (workers claiming rows with FOR UPDATE SKIP LOCKED and leases) is the next step.
#pragma once
#include <string>

#include "variance/store.h"

namespace detdl::variance {

// postgresql://... or postgres://...
bool is_postgres_url(const std::string& s);

// True when this build has libpq.
bool postgres_available();

// Copies into the database at `url` (tables created if missing) every study and run of the
// SQLite store `from` that the database lacks, each run with its epochs, class accuracies,
// final weights and per-epoch predictions, in one transaction. A run already there with
// the same weight hash is left as it is; one with another weight hash, or a study of the
// same name with another spec, throws std::runtime_error naming both stores and the row,
// and nothing is written. Throws std::runtime_error naming the URL when the database cannot
// be reached, and when the build has no libpq.
Store::MergeResult merge_sqlite_into_postgres(const std::string& from, const std::string& url);

// Copies the database's studies and runs into the SQLite store `to` (created if missing),
// with Store::merge_from's rules.
Store::MergeResult merge_postgres_into_sqlite(const std::string& url, const std::string& to);

}  // namespace detdl::variance
