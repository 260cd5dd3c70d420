#include "engine/node/commands.hpp"

#include <iostream>
#include <map>
#include <string>
#include <string_view>

#include "engine/api_auth.hpp"
#include "engine/ids.hpp"
#include "engine/jwt.hpp"
#include "storage/backup.hpp"

namespace imengine {

namespace {

// A subcommand's flags: --name=value only, every name known, no stray
// words; values land in `flags`, which holds the defaults.
bool parse_flags(int argc, char** argv, const char* command,
                 std::map<std::string, std::string>& flags) {
  for (int i = 2; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto eq = arg.find('=');
    auto name = arg.substr(0, eq);
    if (arg.rfind("--", 0) != 0 || eq == std::string_view::npos
        || !flags.count(std::string(name.substr(2)))) {
      std::cerr << "imengine " << command << ": unknown argument '" << arg
                << "' (flags are --name=value; imengine --help lists them)\n";
      return false;
    }
    flags[std::string(name.substr(2))] = std::string(arg.substr(eq + 1));
  }
  return true;
}

int fail(const char* command, const std::string& why, int code = 2) {
  std::cerr << "imengine " << command << ": " << why << "\n";
  return code;
}

int run_backup(int argc, char** argv) {
  std::map<std::string, std::string> f{{"data", "./data"}, {"to", ""}};
  if (!parse_flags(argc, argv, "backup", f))
    return 2;
  if (f["to"].empty())
    return fail("backup", "needs --to=PATH (a new directory)");
  if (auto why = storage::backup(f["data"], f["to"]); !why.empty())
    return fail("backup", why, 1);
  std::cout << "backup of " << f["data"] << " written to " << f["to"]
            << " (start a node on it with --data=" << f["to"] << ")\n";
  return 0;
}

int run_token(int argc, char** argv) {
  std::map<std::string, std::string> f{
    {"sub", ""}, {"ttl", "3600"}, {"jwt-secret", ""}, {"jwt-secret-file", ""}};
  if (!parse_flags(argc, argv, "token", f))
    return 2;
  if (!valid_user(f["sub"]))
    return fail("token", "--sub must be a valid user id");
  int64_t ttl = 0;
  try {
    size_t used = 0;
    ttl = std::stoll(f["ttl"], &used);
    if (used != f["ttl"].size() || ttl < 1)
      throw std::invalid_argument("ttl");
  } catch (const std::exception&) {
    return fail("token", "--ttl must be a positive number of seconds");
  }
  auto secret = f["jwt-secret"];
  if (!f["jwt-secret-file"].empty()) {
    if (!secret.empty())
      return fail("token", "give --jwt-secret or --jwt-secret-file, not both");
    auto s = read_secret_file("--jwt-secret-file", f["jwt-secret-file"]);
    if (!s)
      return fail("token", s.error().msg);
    secret = *s;
  }
  if (secret.empty())
    return fail("token", "needs --jwt-secret or --jwt-secret-file (the engine's)");
  std::cout << make_jwt(f["sub"], now_ms() / 1000 + ttl, secret) << "\n";
  return 0;
}

} // namespace

std::optional<int> run_command(int argc, char** argv) {
  if (argc < 2)
    return std::nullopt;
  std::string_view command = argv[1];
  if (command == "backup")
    return run_backup(argc, argv);
  if (command == "token")
    return run_token(argc, argv);
  return std::nullopt;
}

} // namespace imengine
