// A small strict JSON reader and writer (RFC 8259, no extensions): the unit tests spell
// manifests with it (test/unit/ManifestJson.cpp); training checkpoints keep their metadata in it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace shardc::rt {

class JsonValue {
public:
  enum class Kind : uint8_t { Null, Bool, Int, Double, String, Array, Object };
  using Array = std::vector<JsonValue>;
  // Members in source order; duplicate keys are rejected by the parser.
  using Object = std::vector<std::pair<std::string, JsonValue>>;

  JsonValue() = default;
  JsonValue(std::nullptr_t) {}
  JsonValue(bool v) : v_(v) {}
  JsonValue(int v) : v_(static_cast<int64_t>(v)) {}
  JsonValue(int64_t v) : v_(v) {}
  JsonValue(double v) : v_(v) {}
  JsonValue(const char *v) : v_(std::string(v)) {}
  JsonValue(std::string v) : v_(std::move(v)) {}
  JsonValue(Array v) : v_(std::move(v)) {}
  JsonValue(Object v) : v_(std::move(v)) {}

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool isNull() const { return kind() == Kind::Null; }
  bool isBool() const { return kind() == Kind::Bool; }
  bool isInt() const { return kind() == Kind::Int; }
  bool isNumber() const { return kind() == Kind::Int || kind() == Kind::Double; }
  bool isString() const { return kind() == Kind::String; }
  bool isArray() const { return kind() == Kind::Array; }
  bool isObject() const { return kind() == Kind::Object; }

  // Accessors require the matching kind (check first); asDouble also accepts an Int.
  bool asBool() const { return std::get<bool>(v_); }
  int64_t asInt() const { return std::get<int64_t>(v_); }
  double asDouble() const;
  const std::string &asString() const { return std::get<std::string>(v_); }
  const Array &asArray() const { return std::get<Array>(v_); }
  Array &asArray() { return std::get<Array>(v_); }
  const Object &asObject() const { return std::get<Object>(v_); }
  Object &asObject() { return std::get<Object>(v_); }

  // The member named `key` of an object, or nullptr (also when this is not an object).
  const JsonValue *find(std::string_view key) const;
  JsonValue *find(std::string_view key);

private:
  // Alternative order matches Kind.
  std::variant<std::nullptr_t, bool, int64_t, double, std::string, Array, Object> v_;
};

const char *jsonKindName(JsonValue::Kind kind); // "null", "a boolean", "an integer", ...

// Parses `text` as one JSON document. A number is an Int when written without fraction or
// exponent and it fits in int64, otherwise a Double. Returns "" on success, otherwise
// "LINE:COL: message" (1-based; columns count bytes).
[[nodiscard]] std::string parseJson(std::string_view text, JsonValue &out);

// Compact JSON with members in stored order. Doubles keep a '.' or exponent so that they
// read back as doubles; non-finite doubles (not representable in JSON) are written as null.
std::string writeJson(const JsonValue &value);

} // namespace shardc::rt
