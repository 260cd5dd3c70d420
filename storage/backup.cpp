#include "storage/backup.hpp"

#include <filesystem>
#include <system_error>

#include <lmdb.h>

namespace imengine::storage {

namespace {

std::string lmdb_failure(const char* what, const std::string& path, int rc) {
  return std::string(what) + " " + path + ": " + mdb_strerror(rc);
}

} // namespace

std::string backup(const std::string& data, const std::string& to) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(fs::path(data) / "data.mdb", ec))
    return "no store in " + data + " (no data.mdb)";
  if (fs::exists(fs::path(to) / "data.mdb", ec))
    return to + " already holds a store; back up into a new directory";
  fs::create_directories(to, ec);
  if (ec)
    return "cannot create " + to + ": " + ec.message();
  MDB_env* env = nullptr;
  if (int rc = mdb_env_create(&env); rc != MDB_SUCCESS)
    return lmdb_failure("mdb_env_create for", data, rc);
  // As many named databases as the engine opens; read-only, and the map
  // as large as the file (LMDB takes the file's size when it is larger).
  mdb_env_set_maxdbs(env, 16);
  int rc = mdb_env_open(env, data.c_str(), MDB_RDONLY | MDB_NOTLS, 0644);
  if (rc == MDB_SUCCESS)
    rc = mdb_env_copy2(env, to.c_str(), MDB_CP_COMPACT);
  auto what = rc == MDB_SUCCESS ? std::string{} : lmdb_failure("backup of", data, rc);
  mdb_env_close(env);
  return what;
}

} // namespace imengine::storage
