#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/metrics.hpp"

using namespace imengine;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (l == line)
      return true;
  return false;
}

std::string rendered(const histogram& h) {
  std::string out;
  h.render(out, "t_hist", "A test histogram.");
  return out;
}

} // namespace

TEST_CASE("histogram buckets are cumulative, with +Inf, _sum and _count") {
  histogram h{{1, 2.5, 10}};
  for (double v : {0.5, 1.0, 2.0, 2.5, 3.0, 100.0})
    h.observe(v);
  auto text = rendered(h);
  CAPTURE(text);
  CHECK(text == "# HELP t_hist A test histogram.\n"
                "# TYPE t_hist histogram\n"
                "t_hist_bucket{le=\"1\"} 2\n"
                "t_hist_bucket{le=\"2.5\"} 4\n"
                "t_hist_bucket{le=\"10\"} 5\n"
                "t_hist_bucket{le=\"+Inf\"} 6\n"
                "t_hist_sum 109\n"
                "t_hist_count 6\n");
}

TEST_CASE("histogram: an empty one renders zeros, small bounds print plainly") {
  histogram h{{0.0001, 0.00025, 1}};
  auto text = rendered(h);
  CAPTURE(text);
  CHECK(has_line(text, "t_hist_bucket{le=\"0.0001\"} 0"));
  CHECK(has_line(text, "t_hist_bucket{le=\"0.00025\"} 0"));
  CHECK(has_line(text, "t_hist_bucket{le=\"+Inf\"} 0"));
  CHECK(has_line(text, "t_hist_sum 0"));
  CHECK(has_line(text, "t_hist_count 0"));
  h.observe(0.0002);
  h.observe(0.00005);
  text = rendered(h);
  CHECK(has_line(text, "t_hist_bucket{le=\"0.0001\"} 1"));
  CHECK(has_line(text, "t_hist_bucket{le=\"0.00025\"} 2"));
  CHECK(has_line(text, "t_hist_bucket{le=\"1\"} 2"));
  CHECK(has_line(text, "t_hist_sum 0.00025"));
}

TEST_CASE("histogram counts every observation from concurrent threads") {
  histogram h{{1, 2}};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&h] {
      for (int i = 0; i < 10000; ++i)
        h.observe(i % 3);   // 0, 1, 2
    });
  for (auto& t : threads)
    t.join();
  auto text = rendered(h);
  CAPTURE(text);
  // per thread: 3334 zeros, 3333 ones, 3333 twos
  CHECK(has_line(text, "t_hist_bucket{le=\"1\"} 26668"));
  CHECK(has_line(text, "t_hist_bucket{le=\"2\"} 40000"));
  CHECK(has_line(text, "t_hist_bucket{le=\"+Inf\"} 40000"));
  CHECK(has_line(text, "t_hist_count 40000"));
  CHECK(has_line(text, "t_hist_sum 39996"));   // 4 * (3333 + 2 * 3333)
}

TEST_CASE("metrics::render exposes every metric with HELP and TYPE") {
  metrics m;
  m.connections = 3;
  m.connections_total = 10;
  m.frames_in.add(client_frame_slot("send"), 99);
  m.frames_in.add(client_frame_slot("no_such_type"));
  m.frames_out.add(server_frame_slot("ack"), 7);
  m.bytes_in = 1234;
  m.map_grows = 1;
  m.bad_frames = 2;
  m.messages_accepted = 50;
  m.duplicates = 1;
  m.pushes = 70;
  m.retransmits = 4;
  m.inbox_appends = 90;
  m.commits = 20;
  m.commit_errors = 0;
  m.commit_batch_size.observe(3);
  m.commit_seconds.observe(0.002);
  m.count_error(errc::rate_limited);
  m.count_error(errc::rate_limited);
  m.count_error(errc::storage);
  auto text = m.render();
  CAPTURE(text);

  struct expect { const char* name; const char* type; const char* value; };
  for (auto e : {expect{"imengine_connections_open", "gauge", "3"},
                 expect{"imengine_connections_total", "counter", "10"},
                 expect{"imengine_bytes_in_total", "counter", "1234"},
                 expect{"imengine_map_grows_total", "counter", "1"},
                 expect{"imengine_bad_frames_total", "counter", "2"},
                 expect{"imengine_messages_accepted_total", "counter", "50"},
                 expect{"imengine_duplicates_total", "counter", "1"},
                 expect{"imengine_pushes_total", "counter", "70"},
                 expect{"imengine_retransmits_total", "counter", "4"},
                 expect{"imengine_inbox_appends_total", "counter", "90"},
                 expect{"imengine_commits_total", "counter", "20"},
                 expect{"imengine_commit_errors_total", "counter", "0"}}) {
    CAPTURE(e.name);
    CHECK(has_line(text, std::string("# TYPE ") + e.name + " " + e.type));
    CHECK(text.find(std::string("# HELP ") + e.name + " ") != std::string::npos);
    CHECK(has_line(text, std::string(e.name) + " " + e.value));
  }
  CHECK(has_line(text, "# TYPE imengine_frames_in_total counter"));
  CHECK(has_line(text, "imengine_frames_in_total{type=\"send\"} 99"));
  CHECK(has_line(text, "imengine_frames_in_total{type=\"other\"} 1"));
  CHECK(has_line(text, "imengine_frames_in_total{type=\"auth\"} 0"));
  CHECK(has_line(text, "imengine_frames_out_total{type=\"ack\"} 7"));
  CHECK(has_line(text, "# TYPE imengine_ack_seconds histogram"));
  CHECK(has_line(text, "# TYPE imengine_errors_total counter"));
  CHECK(has_line(text, "imengine_errors_total{code=\"rate_limited\"} 2"));
  CHECK(has_line(text, "imengine_errors_total{code=\"storage\"} 1"));
  CHECK(has_line(text, "imengine_errors_total{code=\"internal\"} 0"));
  CHECK(text.find("bad_config") == std::string::npos);
  CHECK(has_line(text, "# TYPE imengine_commit_batch_size histogram"));
  CHECK(has_line(text, "imengine_commit_batch_size_bucket{le=\"2\"} 0"));
  CHECK(has_line(text, "imengine_commit_batch_size_bucket{le=\"4\"} 1"));
  CHECK(has_line(text, "imengine_commit_batch_size_bucket{le=\"1024\"} 1"));
  CHECK(has_line(text, "imengine_commit_batch_size_bucket{le=\"+Inf\"} 1"));
  CHECK(has_line(text, "imengine_commit_batch_size_sum 3"));
  CHECK(has_line(text, "imengine_commit_batch_size_count 1"));
  CHECK(has_line(text, "# TYPE imengine_commit_seconds histogram"));
  CHECK(has_line(text, "imengine_commit_seconds_bucket{le=\"0.001\"} 0"));
  CHECK(has_line(text, "imengine_commit_seconds_bucket{le=\"0.0025\"} 1"));
  CHECK(has_line(text, "imengine_commit_seconds_sum 0.002"));
  CHECK(has_line(text, "imengine_commit_seconds_count 1"));
  // the exposition format ends every line, the last one included
  REQUIRE_FALSE(text.empty());
  CHECK(text.back() == '\n');
}

TEST_CASE("a negative gauge renders with its sign") {
  metrics m;
  m.connections = -1;   // a decrement racing ahead of its increment
  CHECK(has_line(m.render(), "imengine_connections_open -1"));
}
