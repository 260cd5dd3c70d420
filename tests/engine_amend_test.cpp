// Recall and edit rules: who may amend what, and what an amendment does.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "engine/amend.hpp"

using namespace imengine;

namespace {

message original() {
  message m;
  m.conv = "g:team";
  m.seq = 42;
  m.from = "alice";
  m.type = "text";
  m.body = "hi";
  m.ex = R"({"k":1})";
  m.mentions = {"bob"};
  m.ts = 1'000'000;
  return m;
}

message amending(std::string_view type, uint64_t seq, std::string body, int64_t ts) {
  message m;
  m.conv = "g:team";
  m.seq = seq;
  m.type = std::string{type};
  m.ex = amend_ex(42);
  m.body = std::move(body);
  m.ts = ts;
  return m;
}

} // namespace

TEST_CASE("reserved types: the engine's own") {
  CHECK(reserved_type("system"));
  CHECK(reserved_type("recall"));
  CHECK(reserved_type("edit"));
  CHECK_FALSE(reserved_type("text"));
  CHECK_FALSE(reserved_type("Recall"));
}

TEST_CASE("amend_target reads ex.seq of a recall or edit only") {
  auto r = amending(recall_type, 43, "", 0);
  CHECK(amend_target(r) == 42);
  r.type = "text";
  CHECK(amend_target(r) == 0);   // a client's {"seq":42} amends nothing
  r.type = "edit";
  for (auto ex : {"", "[]", "{\"seq\":-1}", "{\"seq\":\"42\"}", "{\"x\":1}", "{\"seq\":4.2}"}) {
    CAPTURE(ex);
    r.ex = ex;
    CHECK(amend_target(r) == 0);
  }
}

TEST_CASE("may_amend: the sender within the window, an owner recalls any time") {
  auto m = original();
  std::string why;
  const int64_t window = 120'000;
  CHECK(may_amend(amend_op::recall, m, "alice", false, m.ts + window, window, why) == errc::none);
  CHECK(may_amend(amend_op::edit, m, "alice", false, m.ts + 5, window, why) == errc::none);
  CHECK(may_amend(amend_op::edit, m, "alice", false, m.ts + window + 1, window, why)
        == errc::forbidden);
  CHECK(why.find("120 s window") != std::string::npos);
  CHECK(may_amend(amend_op::recall, m, "alice", false, m.ts + window + 1, window, why)
        == errc::forbidden);
  CHECK(may_amend(amend_op::recall, m, "bob", false, m.ts, window, why) == errc::forbidden);
  CHECK(may_amend(amend_op::edit, m, "bob", false, m.ts, window, why) == errc::forbidden);
  // the owner: recall anything at any time, edit only its own
  CHECK(may_amend(amend_op::recall, m, "carol", true, m.ts + 10 * window, window, why)
        == errc::none);
  CHECK(may_amend(amend_op::edit, m, "carol", true, m.ts, window, why) == errc::forbidden);
  // notices, recalls and edits are not amended; a recalled message is not edited
  for (auto type : {"system", "recall", "edit"}) {
    m.type = type;
    CHECK(may_amend(amend_op::recall, m, "carol", true, m.ts, window, why) == errc::forbidden);
  }
  m = original();
  m.recalled_by = 50;
  CHECK(may_amend(amend_op::edit, m, "alice", false, m.ts, window, why) == errc::forbidden);
}

TEST_CASE("apply_amend: an edit replaces the body, a recall erases it and wins") {
  auto m = original();
  apply_amend(m, amending(edit_type, 43, "hi, fixed", 1'000'500));
  CHECK(m.body == "hi, fixed");
  CHECK(m.edited == 1'000'500);
  CHECK(m.edits == std::vector<uint64_t>{43});
  CHECK(m.ex == R"({"k":1})");
  apply_amend(m, amending(recall_type, 44, "", 1'000'600));
  CHECK(m.body.empty());
  CHECK(m.ex.empty());
  CHECK(m.mentions.empty());
  CHECK(m.recalled_by == 44);
  CHECK(m.edited == 0);
  CHECK(m.edits.empty());
  apply_amend(m, amending(edit_type, 45, "back", 1'000'700));
  CHECK(m.body.empty());   // no edit brings a recalled body back
  apply_amend(m, amending(recall_type, 46, "", 1'000'800));
  CHECK(m.recalled_by == 44);   // the first recall is the one kept
}
