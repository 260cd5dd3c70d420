#pragma once

#include <string>

#include "tests/support/temp_dir.hpp"

namespace imengine::testing {

// A throwaway PKI in a temp dir, made with the openssl CLI (P-256 keys,
// valid two days): CAs, and leaf certificates for both server and client
// use signed by one of them. Files are <name>.pem and <name>.key. Throws
// std::runtime_error when an openssl command fails.
class pki {
public:
  pki();

  std::string path(const std::string& file) const { return (dir_.path / file).string(); }
  std::string read(const std::string& file) const;
  void write(const std::string& file, const std::string& text) const;

  void make_ca(const std::string& name, const std::string& common_name) const;
  void make_cert(const std::string& name, const std::string& ca) const;

private:
  temp_dir dir_;
};

} // namespace imengine::testing
