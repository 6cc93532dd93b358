#include "tools/gradcheck/catalogue.h"

#include <map>

namespace tg::catalogue {
namespace {

std::map<std::string, CaseList>& families() {
  static std::map<std::string, CaseList> f;
  return f;
}

}  // namespace

bool register_family(const char* family, CaseList cases) {
  families()[family] = cases;
  return true;
}

std::vector<OpCase> all_cases() {
  std::vector<OpCase> all;
  for (auto& [name, cases] : families())
    for (OpCase& c : cases()) all.push_back(std::move(c));
  return all;
}

}  // namespace tg::catalogue
