#pragma once

#include <string>

#include "engine/config.hpp"

namespace imengine {

// Loads --cluster-cert, --cluster-key and --cluster-ca as caf-openssl will
// and checks that they fit together: the key is the certificate's, and the
// CA verifies the certificate for use as TLS server and client (a node is
// both). Empty when they are fine, else the problem naming the flag and
// path. caf-openssl reads the files again for every connection and throws
// on its network thread when one is bad, which ends the process: this
// turns that into a refusal at start.
std::string check_cluster_tls_files(const engine_config& e);

} // namespace imengine
