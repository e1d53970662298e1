// The portal's TLS certificate and key: given files, or a self-signed ECDSA P-256 certificate
// made on first start and kept in the data directory (same pin across restarts). The pin is
// the SHA-256 of the certificate's SubjectPublicKeyInfo (protocol::certificatePin).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace tf::portal {

struct TlsIdentity {
  std::string certPem, keyPem;
  std::string pin;        // "sha256:<hex>"
  bool generated = false; // made just now
};

// Reads certPath/keyPath; when both are absent, makes a self-signed certificate for
// `hostNames` (DNS names; IPv4 addresses become IP names) and writes both (key mode 0600).
Result<TlsIdentity> loadOrCreateTlsIdentity(const std::string& certPath, const std::string& keyPath,
                                            const std::vector<std::string>& hostNames);

}  // namespace tf::portal
