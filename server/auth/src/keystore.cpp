#include "hearth/auth/keystore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace hearth::auth {
namespace fs = std::filesystem;

namespace {

void writePrivateFile(const fs::path& path, const std::string& data) {
  fs::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("keystore: cannot create " + tmp.string());
  ::fchmod(fd, 0600);  // O_CREAT honours umask only downwards; make sure of 0600 for a reused file
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      throw std::runtime_error("keystore: cannot write " + tmp.string());
    }
    off += size_t(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) throw std::runtime_error("keystore: cannot write " + tmp.string());
  fs::rename(tmp, path);
}

}  // namespace

KeyStore::KeyStore(KeyStoreOptions options) : options_(std::move(options)) {
  if (options_.directory.empty()) throw std::invalid_argument("keystore: directory not set");
  if (options_.algorithms.empty()) throw std::invalid_argument("keystore: no algorithms configured");
  fs::path dir(options_.directory);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("keystore: cannot create " + dir.string());
  ::chmod(dir.c_str(), 0700);
  for (const auto& file : fs::directory_iterator(dir)) {
    const std::string name = file.path().filename().string();
    if (!file.is_regular_file() || file.path().extension() != ".pem") continue;
    // <alg>-<created>-<kid>.pem
    auto d1 = name.find('-'), d2 = d1 == std::string::npos ? d1 : name.find('-', d1 + 1);
    if (d2 == std::string::npos) continue;
    Entry e{};
    try {
      e.alg = parseAlg(name.substr(0, d1));
      e.created = std::stoll(name.substr(d1 + 1, d2 - d1 - 1));
    } catch (const std::exception&) {
      continue;  // not one of ours
    }
    struct stat st{};
    if (::stat(file.path().c_str(), &st) != 0) throw std::runtime_error("keystore: cannot stat " + file.path().string());
    if (st.st_mode & 077)
      throw std::runtime_error("keystore: " + file.path().string() + " is accessible by group or others (must be 0600)");
    std::ifstream in(file.path(), std::ios::binary);
    std::stringstream pem;
    pem << in.rdbuf();
    e.jwk.key = loadPem(pem.str());
    e.jwk.alg = algName(e.alg);
    e.jwk.use = "sig";
    e.jwk.kid = jwkThumbprint(e.jwk.key.get());
    if (!e.jwk.fits(e.alg)) throw std::runtime_error("keystore: " + file.path().string() + " does not fit its algorithm");
    e.path = file.path().string();
    entries_.push_back(std::move(e));
  }
  std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) { return a.created < b.created; });
  std::unique_lock lock(mutex_);
  maintainLocked();
}

int64_t KeyStore::now() const { return options_.clock ? options_.clock() : int64_t(std::time(nullptr)); }

KeyStore::Entry KeyStore::create(JwsAlg alg, int64_t created) {
  Entry e{};
  e.alg = alg;
  e.created = created;
  e.jwk.key = generateKey(alg);
  e.jwk.alg = algName(alg);
  e.jwk.use = "sig";
  e.jwk.kid = jwkThumbprint(e.jwk.key.get());
  fs::path path = fs::path(options_.directory) / (algName(alg) + "-" + std::to_string(created) + "-" + e.jwk.kid + ".pem");
  writePrivateFile(path, privateKeyPem(e.jwk.key.get()));
  e.path = path.string();
  return e;
}

void KeyStore::maintainLocked() {
  const int64_t t = now();
  for (JwsAlg alg : options_.algorithms) {
    const Entry* active = nullptr;
    for (const auto& e : entries_)
      if (e.alg == alg) active = &e;
    if (!active || t - active->created >= options_.rotateAfter.count()) entries_.push_back(create(alg, t));
  }
  // Retired keys: published until their successor's creation + publishAfterRetire.
  std::vector<Entry> kept;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    const Entry* successor = nullptr;
    for (size_t j = i + 1; j < entries_.size() && !successor; ++j)
      if (entries_[j].alg == e.alg) successor = &entries_[j];
    if (successor && t >= successor->created + options_.publishAfterRetire.count()) {
      std::error_code ec;
      fs::remove(e.path, ec);
      continue;
    }
    kept.push_back(e);
  }
  entries_ = std::move(kept);
}

Jwk KeyStore::signingKey(JwsAlg alg) const {
  std::shared_lock lock(mutex_);
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it)
    if (it->alg == alg) return it->jwk;
  throw std::invalid_argument("keystore: algorithm not configured");
}

std::vector<Jwk> KeyStore::verificationKeys() const {
  std::shared_lock lock(mutex_);
  std::vector<Jwk> out;
  for (const auto& e : entries_) out.push_back(e.jwk);
  return out;
}

std::string KeyStore::jwks() const { return jwksJson(verificationKeys()); }

void KeyStore::rotate(JwsAlg alg) {
  if (std::find(options_.algorithms.begin(), options_.algorithms.end(), alg) == options_.algorithms.end())
    throw std::invalid_argument("keystore: algorithm not configured");
  std::unique_lock lock(mutex_);
  int64_t t = now();
  // Two rotations within one second would share a file name prefix; keep creation strictly increasing.
  for (const auto& e : entries_)
    if (e.alg == alg && e.created >= t) t = e.created + 1;
  entries_.push_back(create(alg, t));
}

void KeyStore::maintain() {
  std::unique_lock lock(mutex_);
  maintainLocked();
}

}  // namespace hearth::auth
