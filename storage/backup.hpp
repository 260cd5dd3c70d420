#pragma once

#include <string>

namespace imengine::storage {

// Writes a consistent, compacted copy of the store in `data` into the
// directory `to` (created; it must not hold a store already). Safe while
// an engine runs on `data`: LMDB copies from one read transaction, so the
// copy is the store as of one commit. Empty on success, else why not.
std::string backup(const std::string& data, const std::string& to);

} // namespace imengine::storage
