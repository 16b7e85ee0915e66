// mini-gtest's runner (gtest/gtest.h): the test registry, --gtest_filter, failure records,
// traces, stdout/stderr capture. Assertions may fail on any thread (rank threads do).
#include "gtest/gtest.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <unistd.h>

namespace testing {

namespace {

struct Registered {
  std::string suite, name;
  internal::Factory make;
};

struct State {
  std::vector<Registered> tests;
  std::vector<std::function<void()>> expansions;
  std::string filter = "*";
  bool listOnly = false;
  bool quiet = false; // the default result printer was released
  std::mutex mutex;   // guards the current test's outcome
  bool failed = false, fatal = false, skipped = false;
};

State &state() {
  static State s;
  return s;
}

struct TraceEntry {
  const char *file;
  int line;
  std::string what;
};
thread_local std::vector<TraceEntry> tTraces;

// gtest's patterns: '*' any run, '?' any one character.
bool matches(const char *pattern, const char *text) {
  if (*pattern == '\0')
    return *text == '\0';
  if (*pattern == '*')
    return matches(pattern + 1, text) || (*text != '\0' && matches(pattern, text + 1));
  if (*text != '\0' && (*pattern == '?' || *pattern == *text))
    return matches(pattern + 1, text + 1);
  return false;
}

bool anyMatches(const std::string &patterns, const std::string &text) {
  size_t start = 0;
  while (start <= patterns.size()) {
    size_t end = patterns.find(':', start);
    if (end == std::string::npos)
      end = patterns.size();
    if (matches(patterns.substr(start, end - start).c_str(), text.c_str()))
      return true;
    start = end + 1;
  }
  return false;
}

// "POSITIVE[-NEGATIVE]", each a ':'-separated list; an empty positive part means "*".
bool selected(const std::string &filter, const std::string &fullName) {
  size_t dash = filter.find('-');
  std::string positive = filter.substr(0, dash), negative;
  if (dash != std::string::npos)
    negative = filter.substr(dash + 1);
  if (positive.empty())
    positive = "*";
  return anyMatches(positive, fullName) && (negative.empty() || !anyMatches(negative, fullName));
}

struct Capture {
  int fd = -1, saved = -1;
  FILE *file = nullptr;
};
Capture gCaptures[3];

void startCapture(int fd) {
  std::fflush(fd == 1 ? stdout : stderr);
  Capture &c = gCaptures[fd];
  c.fd = fd;
  c.file = std::tmpfile();
  c.saved = dup(fd);
  if (c.file)
    dup2(fileno(c.file), fd);
}

std::string endCapture(int fd) {
  std::fflush(fd == 1 ? stdout : stderr);
  Capture &c = gCaptures[fd];
  std::string text;
  if (c.saved >= 0) {
    dup2(c.saved, fd);
    close(c.saved);
  }
  if (c.file) {
    std::rewind(c.file);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, c.file)) > 0)
      text.append(buf, n);
    std::fclose(c.file);
  }
  c = Capture{};
  return text;
}

} // namespace

void Test::RecordProperty(const std::string &key, const std::string &value) {
  if (!state().quiet)
    std::printf("[ PROPERTY ] %s = %s\n", key.c_str(), value.c_str());
}

TestEventListener *TestEventListeners::default_result_printer() {
  static TestEventListener *printer = new TestEventListener;
  return printer;
}

TestEventListener *TestEventListeners::Release(TestEventListener *listener) {
  if (listener == default_result_printer()) {
    state().quiet = true;
    return new TestEventListener; // the caller deletes it; the static one stays for later calls
  }
  return nullptr;
}

UnitTest *UnitTest::GetInstance() {
  static UnitTest unit;
  return &unit;
}

void InitGoogleTest() {}

void InitGoogleTest(int *argc, char **argv) {
  if (const char *env = std::getenv("GTEST_FILTER"))
    state().filter = env;
  int kept = 1;
  for (int i = 1; i < *argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--gtest_filter=", 0) == 0)
      state().filter = a.substr(15);
    else if (a == "--gtest_list_tests")
      state().listOnly = true;
    else if (a.rfind("--gtest_", 0) == 0)
      ; // other gtest flags (--gtest_brief, --gtest_color, ...) do not change what runs
    else
      argv[kept++] = argv[i];
  }
  *argc = kept;
  argv[kept] = nullptr;
}

namespace internal {

void Reporter::operator=(const Message &user) const {
  State &s = state();
  std::string text;
  if (outcome_ == Outcome::Skip) {
    text = std::string(file_) + ":" + std::to_string(line_) + ": Skipped\n" + user.str() + "\n";
  } else {
    text = std::string(file_) + ":" + std::to_string(line_) + ": Failure\n" + message_ + "\n";
    if (!user.str().empty())
      text += user.str() + "\n";
    if (!tTraces.empty()) {
      text += "Google Test trace:\n";
      for (auto it = tTraces.rbegin(); it != tTraces.rend(); ++it)
        text += std::string(it->file) + ":" + std::to_string(it->line) + ": " + it->what + "\n";
    }
  }
  std::lock_guard<std::mutex> lock(s.mutex);
  if (outcome_ == Outcome::Skip) {
    s.skipped = true;
  } else {
    s.failed = true;
    s.fatal = s.fatal || outcome_ == Outcome::Fatal;
  }
  std::fflush(stdout);
  std::fputs(text.c_str(), stdout);
  std::fflush(stdout);
}

void ScopedTrace::push(const char *file, int line, const std::string &what) {
  tTraces.push_back({file, line, what});
}

ScopedTrace::~ScopedTrace() { tTraces.pop_back(); }

AssertionResult compareNear(const char *ea, const char *eb, const char *etol, double a, double b,
                            double tol) {
  double diff = std::fabs(a - b);
  if (diff <= tol)
    return AssertionResult(true);
  return AssertionResult(false, std::string("The difference between ") + ea + " and " + eb +
                                    " is " + print(diff) + ", which exceeds " + etol +
                                    ", where\n" + ea + " evaluates to " + print(a) + ",\n" + eb +
                                    " evaluates to " + print(b) + ", and\n" + etol +
                                    " evaluates to " + print(tol) + ".");
}

AssertionResult compareStrEq(const char *ea, const char *eb, const char *a, const char *b) {
  if ((a == nullptr && b == nullptr) || (a && b && std::strcmp(a, b) == 0))
    return AssertionResult(true);
  return AssertionResult(false, std::string("Expected equality of these values:\n  ") + ea +
                                    "\n    Which is: " + print(a) + "\n  " + eb +
                                    "\n    Which is: " + print(b));
}

AssertionResult compareDoubleEq(const char *ea, const char *eb, double a, double b) {
  // Within 4 units in the last place, as gtest's: compared as sign-magnitude integers.
  auto ordered = [](double v) {
    int64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    return bits < 0 ? std::numeric_limits<int64_t>::min() - bits : bits;
  };
  if (!std::isnan(a) && !std::isnan(b)) {
    int64_t ia = ordered(a), ib = ordered(b);
    uint64_t distance = ia > ib ? uint64_t(ia) - uint64_t(ib) : uint64_t(ib) - uint64_t(ia);
    if (distance <= 4)
      return AssertionResult(true);
  }
  return compareEq(ea, eb, a, b);
}

bool registerTest(const std::string &suite, const std::string &name, Factory make) {
  state().tests.push_back({suite, name, std::move(make)});
  return true;
}

bool registerExpansion(std::function<void()> expand) {
  state().expansions.push_back(std::move(expand));
  return true;
}

void CaptureStdout() { startCapture(1); }
void CaptureStderr() { startCapture(2); }
std::string GetCapturedStdout() { return endCapture(1); }
std::string GetCapturedStderr() { return endCapture(2); }

namespace {

// Runs one phase (SetUp, the body, TearDown); an exception is a failure, as in gtest.
void guarded(const char *phase, const std::function<void()> &f) {
#if defined(__cpp_exceptions)
  try {
    f();
  } catch (const std::exception &e) {
    Reporter(Outcome::NonFatal, "unknown file", 0,
             std::string("C++ exception with description \"") + e.what() + "\" thrown in " +
                 phase + ".") = Message();
  } catch (...) {
    Reporter(Outcome::NonFatal, "unknown file", 0,
             std::string("Unknown C++ exception thrown in ") + phase + ".") = Message();
  }
#else
  (void)phase;
  f();
#endif
}

} // namespace

int runAllTests() {
  State &s = state();
  std::vector<std::function<void()>> expansions;
  expansions.swap(s.expansions);
  for (auto &expand : expansions)
    expand();
  // As gtest: the tests of a suite together, suites in the order they first appear.
  std::vector<const Registered *> chosen;
  std::vector<bool> taken(s.tests.size(), false);
  for (size_t i = 0; i < s.tests.size(); ++i)
    for (size_t j = i; j < s.tests.size(); ++j)
      if (!taken[j] && s.tests[j].suite == s.tests[i].suite) {
        taken[j] = true;
        if (selected(s.filter, s.tests[j].suite + "." + s.tests[j].name))
          chosen.push_back(&s.tests[j]);
      }
  if (s.listOnly) {
    std::string suite;
    for (const Registered *t : chosen) {
      if (t->suite != suite)
        std::printf("%s.\n", (suite = t->suite).c_str());
      std::printf("  %s\n", t->name.c_str());
    }
    return 0;
  }
  if (!s.quiet)
    std::printf("[==========] Running %zu tests (mini-gtest).\n", chosen.size());
  std::vector<std::string> failedNames;
  size_t passed = 0, skipped = 0;
  auto start = std::chrono::steady_clock::now();
  for (const Registered *t : chosen) {
    std::string full = t->suite + "." + t->name;
    if (!s.quiet)
      std::printf("[ RUN      ] %s\n", full.c_str());
    std::fflush(stdout);
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      s.failed = s.fatal = s.skipped = false;
    }
    auto t0 = std::chrono::steady_clock::now();
    std::unique_ptr<Test> test;
    guarded("the test fixture's constructor", [&] { test.reset(t->make()); });
    if (test) {
      guarded("SetUp()", [&] { test->SetUp(); });
      if (!s.fatal && !s.skipped)
        guarded("the test body", [&] { test->TestBody(); });
      guarded("TearDown()", [&] { test->TearDown(); });
      guarded("the test fixture's destructor", [&] { test.reset(); });
    }
    long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - t0)
                       .count();
    const char *tag = "[       OK ]";
    if (s.failed) {
      tag = "[  FAILED  ]";
      failedNames.push_back(full);
    } else if (s.skipped) {
      tag = "[  SKIPPED ]";
      ++skipped;
    } else {
      ++passed;
    }
    if (!s.quiet || s.failed)
      std::printf("%s %s (%lld ms)\n", tag, full.c_str(), ms);
    std::fflush(stdout);
  }
  long long totalMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
  if (!s.quiet) {
    std::printf("[==========] %zu tests ran. (%lld ms total)\n", chosen.size(), totalMs);
    std::printf("[  PASSED  ] %zu tests.\n", passed);
    if (skipped)
      std::printf("[  SKIPPED ] %zu tests.\n", skipped);
  }
  if (!failedNames.empty()) {
    std::printf("[  FAILED  ] %zu tests, listed below:\n", failedNames.size());
    for (const std::string &n : failedNames)
      std::printf("[  FAILED  ] %s\n", n.c_str());
  }
  std::fflush(stdout);
  return failedNames.empty() ? 0 : 1;
}

} // namespace internal

} // namespace testing
