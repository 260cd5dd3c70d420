#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

namespace imbench {

// `--name=value` command-line options. Every option a scenario reads is
// remembered, so a misspelt option is reported instead of silently ignored.
class options {
public:
  options(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0)
        throw std::invalid_argument("unexpected argument: " + a);
      auto eq = a.find('=');
      if (eq == std::string::npos)
        values_[a.substr(2)] = "true";
      else
        values_[a.substr(2, eq - 2)] = a.substr(eq + 1);
    }
  }

  std::string str(const std::string& name, const std::string& def) const {
    used_.insert(name);
    auto it = values_.find(name);
    return it == values_.end() ? def : it->second;
  }
  uint64_t num(const std::string& name, uint64_t def) const {
    auto s = str(name, "");
    if (s.empty())
      return def;
    size_t end = 0;
    auto v = std::stoull(s, &end);
    if (end != s.size())
      throw std::invalid_argument("--" + name + " needs a number, got " + s);
    return v;
  }
  double real(const std::string& name, double def) const {
    auto s = str(name, "");
    return s.empty() ? def : std::stod(s);
  }
  bool has(const std::string& name) const {
    used_.insert(name);
    return values_.count(name) > 0;
  }
  // Throws if an option was given that nothing asked for.
  void check_all_used() const {
    for (auto& [k, v] : values_)
      if (!used_.count(k))
        throw std::invalid_argument("unknown option --" + k);
  }

private:
  std::map<std::string, std::string> values_;
  mutable std::set<std::string> used_;
};

} // namespace imbench
