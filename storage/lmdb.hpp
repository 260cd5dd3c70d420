#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <string_view>

#include <lmdb.h>

// Thin RAII over the LMDB C API, in the spirit of lmdbxx: move-only
// transactions that abort in their destructor, and big-endian integer keys
// so that ranges scan in numeric order.
namespace imengine::storage {

class lmdb_error : public std::runtime_error {
public:
  lmdb_error(const char* what, int rc)
    : std::runtime_error(std::string(what) + ": " + mdb_strerror(rc)), rc_(rc) {}
  int code() const noexcept { return rc_; }

private:
  int rc_;
};

inline void check(int rc, const char* what) {
  if (rc != MDB_SUCCESS)
    throw lmdb_error(what, rc);
}

inline std::string_view as_view(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

inline MDB_val as_val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

// Big-endian 64-bit integers: byte order equals numeric order.
inline void put_be64(std::string& out, uint64_t x) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((x >> shift) & 0xff));
}

inline uint64_t get_be64(std::string_view s) {
  uint64_t x = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i)
    x = (x << 8) | static_cast<unsigned char>(s[i]);
  return x;
}

// Keys of the form `name \0 be64(n)`: every key of one name shares the
// prefix `name \0` (identifiers never contain NUL) and sorts by n.
inline std::string key_prefix(std::string_view name) {
  std::string k;
  k.reserve(name.size() + 9);
  k.append(name);
  k.push_back('\0');
  return k;
}

inline std::string seq_key(std::string_view name, uint64_t n) {
  auto k = key_prefix(name);
  put_be64(k, n);
  return k;
}

inline std::string pair_key(std::string_view a, std::string_view b) {
  auto k = key_prefix(a);
  k.append(b);
  return k;
}

// A transaction; aborts in its destructor unless committed. Counts the
// keys it reads into `reads` (if given): what a query costs, measurable.
class txn {
public:
  // `gate`, if given, is held shared for the transaction's life: growing
  // the map takes it exclusively, since LMDB may resize only while no
  // transaction is open.
  txn(MDB_env* env, bool read_only, std::atomic<uint64_t>* reads = nullptr,
      std::shared_mutex* gate = nullptr)
    : reads_(reads) {
    if (gate)
      gate_ = std::shared_lock<std::shared_mutex>(*gate);
    check(mdb_txn_begin(env, nullptr, read_only ? MDB_RDONLY : 0, &h_), "mdb_txn_begin");
  }
  txn(txn&& other) noexcept
    : gate_(std::move(other.gate_)), h_(other.h_), reads_(other.reads_) {
    other.h_ = nullptr;
  }
  txn& operator=(txn&&) = delete;
  txn(const txn&) = delete;
  ~txn() { abort(); }

  void commit() {
    auto h = h_;
    h_ = nullptr;
    check(mdb_txn_commit(h), "mdb_txn_commit");
  }
  void abort() noexcept {
    if (h_)
      mdb_txn_abort(h_);
    h_ = nullptr;
  }
  MDB_txn* handle() const noexcept { return h_; }

  void count_read() const noexcept {
    if (reads_)
      reads_->fetch_add(1, std::memory_order_relaxed);
  }

  std::optional<std::string_view> get(MDB_dbi db, std::string_view key) const {
    count_read();
    auto k = as_val(key);
    MDB_val v;
    auto rc = mdb_get(h_, db, &k, &v);
    if (rc == MDB_NOTFOUND)
      return std::nullopt;
    check(rc, "mdb_get");
    return as_view(v);
  }
  void put(MDB_dbi db, std::string_view key, std::string_view value, unsigned flags = 0) {
    auto k = as_val(key);
    auto v = as_val(value);
    check(mdb_put(h_, db, &k, &v, flags), "mdb_put");
  }
  bool del(MDB_dbi db, std::string_view key) {
    auto k = as_val(key);
    auto rc = mdb_del(h_, db, &k, nullptr);
    if (rc == MDB_NOTFOUND)
      return false;
    check(rc, "mdb_del");
    return true;
  }

private:
  std::shared_lock<std::shared_mutex> gate_;   // released after the abort
  MDB_txn* h_ = nullptr;
  std::atomic<uint64_t>* reads_ = nullptr;
};

// Opens (creating it if new) the named database `name`.
inline MDB_dbi open_db(txn& t, const char* name) {
  MDB_dbi db;
  check(mdb_dbi_open(t.handle(), name, MDB_CREATE, &db), name);
  return db;
}

// A cursor inside one transaction, closed in its destructor.
class cursor {
public:
  cursor(const txn& t, MDB_dbi db) : t_(t) {
    check(mdb_cursor_open(t.handle(), db, &h_), "mdb_cursor_open");
  }
  cursor(const cursor&) = delete;
  cursor& operator=(const cursor&) = delete;
  ~cursor() { mdb_cursor_close(h_); }

  // Positions at the first key >= `key`; false at the end.
  bool seek(std::string_view key) { k_ = as_val(key); return step(MDB_SET_RANGE); }
  bool first() { return step(MDB_FIRST); }
  bool last() { return step(MDB_LAST); }
  bool next() { return step(MDB_NEXT); }
  bool prev() { return step(MDB_PREV); }
  std::string_view key() const { return as_view(k_); }
  std::string_view value() const { return as_view(v_); }

private:
  bool step(MDB_cursor_op op) {
    t_.count_read();
    auto rc = mdb_cursor_get(h_, &k_, &v_, op);
    if (rc == MDB_NOTFOUND)
      return false;
    check(rc, "mdb_cursor_get");
    return true;
  }
  const txn& t_;
  MDB_cursor* h_ = nullptr;
  MDB_val k_{0, nullptr};
  MDB_val v_{0, nullptr};
};

} // namespace imengine::storage
