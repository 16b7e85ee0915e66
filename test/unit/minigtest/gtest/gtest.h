// mini-gtest: the part of GoogleTest's API that shardc's unit and GPU tests use, for machines
// without GoogleTest (the GPU machines; -DSHARDC_MINIMAL_DEPS=ON forces it). Written for this
// project; test/unit/CMakeLists.txt uses it only when find_package(GTest) fails or is skipped.
//
// Has: TEST, TEST_F, TEST_P + INSTANTIATE_TEST_SUITE_P + Values + TestParamInfo, Test's
// SetUp/TearDown/RecordProperty, EXPECT_/ASSERT_ {TRUE, FALSE, EQ, NE, LT, LE, GT, GE, NEAR,
// STREQ, DOUBLE_EQ}, with `<< message`, FAIL, ADD_FAILURE, SUCCEED, GTEST_SKIP, SCOPED_TRACE,
// PrintToString, InitGoogleTest (--gtest_filter, --gtest_list_tests; GTEST_FILTER), the default
// result printer's Release (silences progress), internal::Capture{Stdout,Stderr}, and a main
// (MiniGtestMain.cpp) that runs every test, prints failures and returns non-zero on any.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace testing {

// What a failing assertion streams its message into.
class Message {
public:
  template <typename T> Message &operator<<(const T &v) {
    ss_ << v;
    return *this;
  }
  Message &operator<<(std::ostream &(*manip)(std::ostream &)) {
    ss_ << manip;
    return *this;
  }
  std::string str() const { return ss_.str(); }

private:
  std::ostringstream ss_;
};

class AssertionResult {
public:
  explicit AssertionResult(bool ok, std::string message = "")
      : ok_(ok), message_(std::move(message)) {}
  explicit operator bool() const { return ok_; }
  const std::string &message() const { return message_; }

private:
  bool ok_;
  std::string message_;
};

class Test {
public:
  virtual ~Test() = default;
  virtual void SetUp() {}
  virtual void TearDown() {}
  virtual void TestBody() = 0;
  static void SetUpTestSuite() {}
  static void TearDownTestSuite() {}
  static void RecordProperty(const std::string &key, const std::string &value);
  static void RecordProperty(const std::string &key, int64_t value) {
    RecordProperty(key, std::to_string(value));
  }
};

template <typename T> class WithParamInterface {
public:
  using ParamType = T;
  virtual ~WithParamInterface() = default;
  static const T &GetParam() { return *paramSlot(); }
  // Set by the runner before it constructs each instance of a parameterized test.
  static const T *&paramSlot() {
    static const T *current = nullptr;
    return current;
  }
};

template <typename T> class TestWithParam : public Test, public WithParamInterface<T> {};

template <typename T> struct TestParamInfo {
  TestParamInfo(const T &p, size_t i) : param(p), index(i) {}
  T param;
  size_t index;
};

// Event listeners: only enough for `delete listeners.Release(listeners.default_result_printer())`
// (the MPI tests' non-zero ranks), which silences the progress lines; failures still print.
class TestEventListener {
public:
  virtual ~TestEventListener() = default;
};
class TestEventListeners {
public:
  TestEventListener *default_result_printer();
  TestEventListener *Release(TestEventListener *listener);
};
class UnitTest {
public:
  static UnitTest *GetInstance();
  TestEventListeners &listeners() { return listeners_; }

private:
  TestEventListeners listeners_;
};

void InitGoogleTest(int *argc, char **argv);
void InitGoogleTest();

namespace internal {

template <typename T, typename = void> struct IsStreamable : std::false_type {};
template <typename T>
struct IsStreamable<T, std::void_t<decltype(std::declval<std::ostream &>() << std::declval<const T &>())>>
    : std::true_type {};
template <typename T, typename = void> struct IsRange : std::false_type {};
template <typename T>
struct IsRange<T, std::void_t<decltype(std::begin(std::declval<const T &>())),
                              decltype(std::end(std::declval<const T &>()))>> : std::true_type {};

template <typename T> void printValue(std::ostream &os, const T &v) {
  using D = std::decay_t<T>;
  if constexpr (std::is_array_v<T> && std::is_same_v<std::remove_cv_t<std::remove_extent_t<T>>, char>) {
    os << '"' << v << '"';
  } else if constexpr (std::is_same_v<D, std::string> || std::is_same_v<D, std::string_view>) {
    os << '"' << v << '"';
  } else if constexpr (std::is_same_v<D, const char *> || std::is_same_v<D, char *>) {
    if (v)
      os << '"' << v << '"';
    else
      os << "NULL";
  } else if constexpr (std::is_same_v<D, bool>) {
    os << (v ? "true" : "false");
  } else if constexpr (std::is_same_v<D, char> || std::is_same_v<D, signed char> ||
                       std::is_same_v<D, unsigned char>) {
    os << static_cast<int>(v);
  } else if constexpr (std::is_floating_point_v<D>) {
    std::ostringstream s;
    s.precision(std::numeric_limits<D>::max_digits10);
    s << v;
    os << s.str();
  } else if constexpr (std::is_same_v<D, std::nullptr_t>) {
    os << "NULL";
  } else if constexpr (std::is_pointer_v<D> && std::is_function_v<std::remove_pointer_t<D>>) {
    os << (v ? "(function pointer)" : "NULL");
  } else if constexpr (std::is_pointer_v<D>) {
    if (v)
      os << static_cast<const void *>(v);
    else
      os << "NULL";
  } else if constexpr (std::is_enum_v<D> && !IsStreamable<D>::value) {
    os << static_cast<long long>(static_cast<std::underlying_type_t<D>>(v));
  } else if constexpr (IsStreamable<D>::value) {
    os << v;
  } else if constexpr (IsRange<D>::value) {
    os << '{';
    bool first = true;
    for (const auto &e : v) {
      os << (first ? " " : ", ");
      printValue(os, e);
      first = false;
    }
    os << (first ? "}" : " }");
  } else {
    os << '<' << sizeof(T) << "-byte object>";
  }
}

template <typename T> std::string print(const T &v) {
  std::ostringstream os;
  printValue(os, v);
  return os.str();
}

// Failure reporting: `reporter = Message() << ...` records the failure (gtest's trick: the
// assignment is a void expression, so `return reporter = ...;` works in void functions).
enum class Outcome { NonFatal, Fatal, Skip };
class Reporter {
public:
  Reporter(Outcome outcome, const char *file, int line, std::string message)
      : outcome_(outcome), file_(file), line_(line), message_(std::move(message)) {}
  void operator=(const Message &user) const;

private:
  Outcome outcome_;
  const char *file_;
  int line_;
  std::string message_;
};

class ScopedTrace {
public:
  template <typename T> ScopedTrace(const char *file, int line, const T &what) {
    Message m;
    m << what;
    push(file, line, m.str());
  }
  ~ScopedTrace();
  ScopedTrace(const ScopedTrace &) = delete;
  ScopedTrace &operator=(const ScopedTrace &) = delete;

private:
  void push(const char *file, int line, const std::string &what);
};

inline AssertionResult boolResult(bool value, const char *expr, bool expected) {
  if (value == expected)
    return AssertionResult(true);
  return AssertionResult(false, std::string("Value of: ") + expr + "\n  Actual: " +
                                    (value ? "true" : "false") + "\nExpected: " +
                                    (expected ? "true" : "false"));
}

template <typename A, typename B>
AssertionResult compareEq(const char *ea, const char *eb, const A &a, const B &b) {
  if (a == b)
    return AssertionResult(true);
  return AssertionResult(false, std::string("Expected equality of these values:\n  ") + ea +
                                    "\n    Which is: " + print(a) + "\n  " + eb +
                                    "\n    Which is: " + print(b));
}

#define MINI_GTEST_COMPARE_(name, op)                                                            \
  template <typename A, typename B>                                                              \
  AssertionResult compare##name(const char *ea, const char *eb, const A &a, const B &b) {        \
    if (a op b)                                                                                  \
      return AssertionResult(true);                                                              \
    return AssertionResult(false, std::string("Expected: (") + ea + ") " #op " (" + eb +         \
                                      "), actual: " + print(a) + " vs " + print(b));             \
  }
MINI_GTEST_COMPARE_(Ne, !=)
MINI_GTEST_COMPARE_(Lt, <)
MINI_GTEST_COMPARE_(Le, <=)
MINI_GTEST_COMPARE_(Gt, >)
MINI_GTEST_COMPARE_(Ge, >=)
#undef MINI_GTEST_COMPARE_

AssertionResult compareNear(const char *ea, const char *eb, const char *etol, double a, double b,
                            double tol);
AssertionResult compareStrEq(const char *ea, const char *eb, const char *a, const char *b);
AssertionResult compareDoubleEq(const char *ea, const char *eb, double a, double b);

// Registration.
using Factory = std::function<Test *()>;
bool registerTest(const std::string &suite, const std::string &name, Factory make);
// Parameterized tests are expanded when the tests run, after every static registration.
bool registerExpansion(std::function<void()> expand);

template <typename Fixture> struct ParamPatterns {
  static std::vector<std::pair<std::string, Factory>> &list() {
    static std::vector<std::pair<std::string, Factory>> patterns;
    return patterns;
  }
};
template <typename Fixture> bool addParamPattern(const char *name, Factory make) {
  ParamPatterns<Fixture>::list().emplace_back(name, std::move(make));
  return true;
}

template <typename... Ts> struct ValueArray {
  std::tuple<Ts...> values;
  template <typename P> std::vector<P> as() const {
    return std::apply([](const auto &...v) { return std::vector<P>{static_cast<P>(v)...}; },
                      values);
  }
};

template <typename P> std::string defaultParamName(const TestParamInfo<P> &info) {
  return std::to_string(info.index);
}

template <typename Fixture, typename Generator,
          typename NameFn = std::string (*)(const TestParamInfo<typename Fixture::ParamType> &)>
bool addInstantiation(const char *prefix, const char *fixture, const Generator &generator,
                      NameFn nameOf = &defaultParamName<typename Fixture::ParamType>) {
  using P = typename Fixture::ParamType;
  auto values = std::make_shared<std::vector<P>>(generator.template as<P>());
  std::string suite = std::string(prefix) + "/" + fixture;
  return registerExpansion([values, suite, nameOf] {
    for (const auto &[pattern, make] : ParamPatterns<Fixture>::list())
      for (size_t i = 0; i < values->size(); ++i) {
        const P *value = &(*values)[i];
        Factory factory = make;
        registerTest(suite, pattern + "/" + std::string(nameOf(TestParamInfo<P>(*value, i))),
                     [value, factory] {
                       Fixture::paramSlot() = value;
                       return factory();
                     });
      }
  });
}

int runAllTests();

void CaptureStdout();
void CaptureStderr();
std::string GetCapturedStdout();
std::string GetCapturedStderr();

} // namespace internal

template <typename... Ts> internal::ValueArray<std::decay_t<Ts>...> Values(Ts &&...values) {
  return {std::make_tuple(std::forward<Ts>(values)...)};
}

template <typename T> std::string PrintToString(const T &value) { return internal::print(value); }

} // namespace testing

inline int RUN_ALL_TESTS() { return ::testing::internal::runAllTests(); }

#define MINI_GTEST_CAT2_(a, b) a##b
#define MINI_GTEST_CAT_(a, b) MINI_GTEST_CAT2_(a, b)
#define MINI_GTEST_CLASS_(suite, name) suite##_##name##_Test

#define MINI_GTEST_DEFINE_(suite, name, base, registration)                                     \
  class MINI_GTEST_CLASS_(suite, name) : public base {                                           \
  public:                                                                                        \
    void TestBody() override;                                                                    \
  };                                                                                             \
  [[maybe_unused]] static const bool MINI_GTEST_CAT_(mini_gtest_registered_,                     \
                                                     MINI_GTEST_CLASS_(suite, name)) =           \
      registration;                                                                              \
  void MINI_GTEST_CLASS_(suite, name)::TestBody()

#define MINI_GTEST_FACTORY_(suite, name)                                                         \
  []() -> ::testing::Test * { return new MINI_GTEST_CLASS_(suite, name); }

#define TEST(suite, name)                                                                        \
  MINI_GTEST_DEFINE_(suite, name, ::testing::Test,                                              \
                     ::testing::internal::registerTest(#suite, #name,                            \
                                                       MINI_GTEST_FACTORY_(suite, name)))
#define TEST_F(fixture, name)                                                                    \
  MINI_GTEST_DEFINE_(fixture, name, fixture,                                                     \
                     ::testing::internal::registerTest(#fixture, #name,                          \
                                                       MINI_GTEST_FACTORY_(fixture, name)))
#define TEST_P(fixture, name)                                                                    \
  MINI_GTEST_DEFINE_(fixture, name, fixture,                                                     \
                     ::testing::internal::addParamPattern<fixture>(                              \
                         #name, MINI_GTEST_FACTORY_(fixture, name)))
#define INSTANTIATE_TEST_SUITE_P(prefix, fixture, ...)                                           \
  [[maybe_unused]] static const bool MINI_GTEST_CAT_(mini_gtest_instantiated_##prefix##_,        \
                                                     fixture) =                                  \
      ::testing::internal::addInstantiation<fixture>(#prefix, #fixture, __VA_ARGS__)

// The assertions. `switch (0) case 0: default:` keeps a following `else` of the caller's own.
#define MINI_GTEST_CHECK_(result, on_failure)                                                    \
  switch (0)                                                                                     \
  case 0:                                                                                        \
  default:                                                                                       \
    if (const ::testing::AssertionResult mini_gtest_result_ = (result))                          \
      ;                                                                                          \
    else                                                                                         \
      on_failure(mini_gtest_result_.message())
#define MINI_GTEST_NONFATAL_(message)                                                            \
  ::testing::internal::Reporter(::testing::internal::Outcome::NonFatal, __FILE__, __LINE__,      \
                                message) = ::testing::Message()
#define MINI_GTEST_FATAL_(message)                                                               \
  return ::testing::internal::Reporter(::testing::internal::Outcome::Fatal, __FILE__, __LINE__,  \
                                       message) = ::testing::Message()

#define EXPECT_TRUE(c) MINI_GTEST_CHECK_(::testing::internal::boolResult(static_cast<bool>(c), #c, true), MINI_GTEST_NONFATAL_)
#define EXPECT_FALSE(c) MINI_GTEST_CHECK_(::testing::internal::boolResult(static_cast<bool>(c), #c, false), MINI_GTEST_NONFATAL_)
#define ASSERT_TRUE(c) MINI_GTEST_CHECK_(::testing::internal::boolResult(static_cast<bool>(c), #c, true), MINI_GTEST_FATAL_)
#define ASSERT_FALSE(c) MINI_GTEST_CHECK_(::testing::internal::boolResult(static_cast<bool>(c), #c, false), MINI_GTEST_FATAL_)

#define MINI_GTEST_CMP_(cmp, a, b, kind) MINI_GTEST_CHECK_(::testing::internal::cmp(#a, #b, a, b), kind)
#define EXPECT_EQ(a, b) MINI_GTEST_CMP_(compareEq, a, b, MINI_GTEST_NONFATAL_)
#define EXPECT_NE(a, b) MINI_GTEST_CMP_(compareNe, a, b, MINI_GTEST_NONFATAL_)
#define EXPECT_LT(a, b) MINI_GTEST_CMP_(compareLt, a, b, MINI_GTEST_NONFATAL_)
#define EXPECT_LE(a, b) MINI_GTEST_CMP_(compareLe, a, b, MINI_GTEST_NONFATAL_)
#define EXPECT_GT(a, b) MINI_GTEST_CMP_(compareGt, a, b, MINI_GTEST_NONFATAL_)
#define EXPECT_GE(a, b) MINI_GTEST_CMP_(compareGe, a, b, MINI_GTEST_NONFATAL_)
#define EXPECT_STREQ(a, b) MINI_GTEST_CMP_(compareStrEq, a, b, MINI_GTEST_NONFATAL_)
#define EXPECT_DOUBLE_EQ(a, b) MINI_GTEST_CMP_(compareDoubleEq, a, b, MINI_GTEST_NONFATAL_)
#define ASSERT_EQ(a, b) MINI_GTEST_CMP_(compareEq, a, b, MINI_GTEST_FATAL_)
#define ASSERT_NE(a, b) MINI_GTEST_CMP_(compareNe, a, b, MINI_GTEST_FATAL_)
#define ASSERT_LT(a, b) MINI_GTEST_CMP_(compareLt, a, b, MINI_GTEST_FATAL_)
#define ASSERT_LE(a, b) MINI_GTEST_CMP_(compareLe, a, b, MINI_GTEST_FATAL_)
#define ASSERT_GT(a, b) MINI_GTEST_CMP_(compareGt, a, b, MINI_GTEST_FATAL_)
#define ASSERT_GE(a, b) MINI_GTEST_CMP_(compareGe, a, b, MINI_GTEST_FATAL_)
#define ASSERT_STREQ(a, b) MINI_GTEST_CMP_(compareStrEq, a, b, MINI_GTEST_FATAL_)
#define ASSERT_DOUBLE_EQ(a, b) MINI_GTEST_CMP_(compareDoubleEq, a, b, MINI_GTEST_FATAL_)
#define EXPECT_NEAR(a, b, tol)                                                                   \
  MINI_GTEST_CHECK_(::testing::internal::compareNear(#a, #b, #tol, a, b, tol), MINI_GTEST_NONFATAL_)
#define ASSERT_NEAR(a, b, tol)                                                                   \
  MINI_GTEST_CHECK_(::testing::internal::compareNear(#a, #b, #tol, a, b, tol), MINI_GTEST_FATAL_)

#define FAIL() MINI_GTEST_FATAL_("Failed")
#define ADD_FAILURE() MINI_GTEST_NONFATAL_("Failed")
#define SUCCEED() static_cast<void>(0)
#define GTEST_SKIP()                                                                             \
  return ::testing::internal::Reporter(::testing::internal::Outcome::Skip, __FILE__, __LINE__,   \
                                       "Skipped") = ::testing::Message()
#define SCOPED_TRACE(what)                                                                       \
  ::testing::internal::ScopedTrace MINI_GTEST_CAT_(mini_gtest_trace_, __LINE__)(__FILE__,        \
                                                                                __LINE__, what)
