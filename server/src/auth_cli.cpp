// `hearth user ...` and `hearth client ...`: account and OAuth-client administration against the
// configured store (the same tables the running server reads), then exit. See auth_server.h and
// README "Security". Passwords come from standard input (first line), never from the command line
// (which other local users can see in the process list). Exit codes: 0 ok, 64 usage, 65 bad input,
// 69 store unavailable.
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "auth_server.h"
#include "hearth/auth/policy.h"

namespace hearth::server {

namespace {

constexpr int kUsage = 64, kDataErr = 65, kUnavailable = 69;

void usage() {
  std::cerr << "usage:\n"
               "  hearth [--config F | --db URL] user add <name> [roles=r1,r2] [fhirUser=Practitioner/9] [name=TEXT]\n"
               "  hearth [...] user passwd <name>          (the new password is read from standard input)\n"
               "  hearth [...] user list\n"
               "  hearth [...] client add <client_id> type=public|confidential-symmetric|confidential-asymmetric\n"
               "                [redirect=URL,URL] [scopes=\"s1 s2\"] [name=TEXT] [jwks-file=PATH] [jku=URL,URL] [roles=r1]\n"
               "  hearth [...] client list\n"
               "user add reads the password from standard input as well (first line).\n";
}

// key=value arguments after the positional ones.
bool options(const std::vector<std::string>& args, size_t from, std::map<std::string, std::string>& out) {
  for (size_t i = from; i < args.size(); ++i) {
    const size_t eq = args[i].find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "expected key=value, got: " << args[i] << "\n";
      return false;
    }
    out[args[i].substr(0, eq)] = args[i].substr(eq + 1);
  }
  return true;
}

std::string readPassword() {
  std::string line;
  std::getline(std::cin, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace

int runAuthCli(const std::vector<std::string>& args, fhir::ResourceStore& store, const Config& config) {
  if (args.size() < 2) {
    usage();
    return kUsage;
  }
  AuthDirectory dir(store);
  const std::string& what = args[0];
  const std::string& verb = args[1];
  // Roles are checked against the catalog the server will use.
  auth::RoleCatalog roles;
  try {
    roles = config.auth.rolesFile.empty() ? auth::RoleCatalog::parse(embeddedRolesProperties())
                                          : auth::RoleCatalog::load(config.auth.rolesFile);
  } catch (const std::exception& e) {
    std::cerr << "roles: " << e.what() << "\n";
    return kDataErr;
  }
  auto checkRoles = [&](const std::vector<std::string>& rs) {
    for (const auto& r : rs) {
      if (!roles.find(r)) throw std::invalid_argument("unknown role " + r + " (see config/roles.properties)");
    }
  };
  try {
    if (what == "user" && verb == "list" && args.size() == 2) {
      for (const auto& a : dir.accounts()) {
        std::cout << a.id << "\troles=" << joinWords(a.roles) << "\tfhirUser=" << a.fhirUser
                  << (a.active ? "" : "\tINACTIVE") << "\n";
      }
      return 0;
    }
    if (what == "user" && verb == "add" && args.size() >= 3) {
      std::map<std::string, std::string> o;
      if (!options(args, 3, o)) return kUsage;
      Account a;
      a.id = args[2];
      a.roles = splitWords(o["roles"]);
      a.fhirUser = o["fhirUser"];
      a.displayName = o["name"];
      checkRoles(a.roles);
      dir.addAccount(a, readPassword());
      std::cout << "user " << a.id << " created\n";
      return 0;
    }
    if (what == "user" && verb == "passwd" && args.size() == 3) {
      dir.setPassword(args[2], readPassword());
      std::cout << "password of " << args[2] << " changed\n";
      return 0;
    }
    if (what == "client" && verb == "list" && args.size() == 2) {
      for (const auto& c : dir.clients()) {
        std::cout << c.clientId << "\t" << c.type << "\tredirect=" << joinWords(c.redirectUris) << "\tscopes=" << c.scopes
                  << "\n";
      }
      return 0;
    }
    if (what == "client" && verb == "add" && args.size() >= 3) {
      std::map<std::string, std::string> o;
      if (!options(args, 3, o)) return kUsage;
      OAuthClient c;
      c.clientId = args[2];
      c.type = o["type"];
      c.name = o["name"];
      c.redirectUris = splitWords(o["redirect"]);
      c.scopes = o["scopes"];
      c.jku = splitWords(o["jku"]);
      c.roles = splitWords(o["roles"]);
      checkRoles(c.roles);
      if (!o["jwks-file"].empty()) {
        std::ifstream in(o["jwks-file"]);
        if (!in) throw std::invalid_argument("cannot read " + o["jwks-file"]);
        std::stringstream ss;
        ss << in.rdbuf();
        c.jwks = ss.str();
      }
      const std::string secret = dir.addClient(c);
      std::cout << "client " << c.clientId << " registered (" << c.type << ")\n";
      if (!secret.empty()) std::cout << "client_secret: " << secret << "\n(shown once; only its hash is stored)\n";
      return 0;
    }
  } catch (const std::invalid_argument& e) {
    std::cerr << e.what() << "\n";
    return kDataErr;
  } catch (const std::out_of_range&) {
    std::cerr << "no such user\n";
    return kDataErr;
  } catch (const fhir::StoreUnavailable& e) {
    std::cerr << "store unavailable: " << e.what() << "\n";
    return kUnavailable;
  }
  usage();
  return kUsage;
}

}  // namespace hearth::server
