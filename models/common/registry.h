// A name -> factory registry for replaceable policies (schedulers, routers, arrival processes, op-time
// predictors, collective algorithms, ...). Each policy family has one interface and one function that adds
// its implementations, one line each. Asking for an unknown name throws InputError listing the valid names.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "models/common/error.h"

namespace servesim {

template <class Interface, class... Args>
class Registry {
 public:
  using Factory = std::function<std::unique_ptr<Interface>(Args...)>;

  explicit Registry(std::string what) : what_(std::move(what)) {}

  Registry& add(const std::string& name, Factory f) {
    factories_.emplace(name, std::move(f));
    return *this;
  }

  [[nodiscard]] bool contains(const std::string& name) const { return factories_.count(name) != 0; }

  // `where` names the key that selected the implementation, e.g. "engine.scheduler.impl".
  [[nodiscard]] std::unique_ptr<Interface> create(const std::string& name, const std::string& where,
                                                  Args... args) const {
    auto it = factories_.find(name);
    if (it == factories_.end()) {
      throw InputError(where + ": unknown " + what_ + " '" + name + "' (valid: " + names() + ")");
    }
    return it->second(std::forward<Args>(args)...);
  }

  [[nodiscard]] std::string names() const {
    std::string out;
    for (const auto& [name, f] : factories_) {
      if (!out.empty()) out += ", ";
      out += name;
    }
    return out;
  }

 private:
  std::string what_;
  std::map<std::string, Factory> factories_;
};

}  // namespace servesim
