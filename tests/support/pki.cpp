#include "tests/support/pki.hpp"

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace imengine::testing {

namespace {

void sh(const std::string& cmd) {
  auto full = cmd + " >/dev/null 2>&1";
  if (std::system(full.c_str()) != 0)
    throw std::runtime_error("pki: failed: " + cmd);
}

} // namespace

pki::pki() {
  write("ext.cnf", "basicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth,clientAuth\n");
}

std::string pki::read(const std::string& file) const {
  std::ifstream in(path(file));
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void pki::write(const std::string& file, const std::string& text) const {
  std::ofstream(path(file)) << text;
}

void pki::make_ca(const std::string& name, const std::string& common_name) const {
  sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
     " -subj '/CN=" + common_name + "' -keyout " + path(name + ".key") + " -out "
     + path(name + ".pem"));
}

void pki::make_cert(const std::string& name, const std::string& ca) const {
  sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj '/CN=" + name
     + "' -keyout " + path(name + ".key") + " -out " + path(name + ".csr"));
  sh("openssl x509 -req -days 2 -in " + path(name + ".csr") + " -CA " + path(ca + ".pem")
     + " -CAkey " + path(ca + ".key") + " -CAcreateserial -CAserial " + path(ca + ".srl")
     + " -extfile " + path("ext.cnf") + " -out " + path(name + ".pem"));
}

} // namespace imengine::testing
