// Strict recursive-descent JSON parser and compact writer behind Json.h.
// Strictness matters: a test manifest that only a lenient reader accepts is a test bug to surface.
#include "shardc/runtime/Json.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace shardc::rt {

double JsonValue::asDouble() const {
  if (isInt())
    return static_cast<double>(asInt());
  return std::get<double>(v_);
}

const JsonValue *JsonValue::find(std::string_view key) const {
  if (!isObject())
    return nullptr;
  for (const auto &member : asObject())
    if (member.first == key)
      return &member.second;
  return nullptr;
}

JsonValue *JsonValue::find(std::string_view key) {
  return const_cast<JsonValue *>(static_cast<const JsonValue *>(this)->find(key));
}

const char *jsonKindName(JsonValue::Kind kind) {
  switch (kind) {
  case JsonValue::Kind::Null: return "null";
  case JsonValue::Kind::Bool: return "a boolean";
  case JsonValue::Kind::Int: return "an integer";
  case JsonValue::Kind::Double: return "a non-integral number";
  case JsonValue::Kind::String: return "a string";
  case JsonValue::Kind::Array: return "an array";
  case JsonValue::Kind::Object: return "an object";
  }
  return "?";
}

namespace {

// Deep enough for any manifest, shallow enough that hostile input cannot exhaust the stack.
constexpr int kMaxDepth = 200;

class JsonParser {
public:
  explicit JsonParser(std::string_view text) : text_(text) {}

  std::string parseDocument(JsonValue &out) {
    skipSpace();
    if (!parseValue(out, 0))
      return error_;
    skipSpace();
    if (pos_ != text_.size()) {
      fail("unexpected content after the JSON value");
      return error_;
    }
    return "";
  }

private:
  std::string_view text_;
  size_t pos_ = 0;
  std::string error_;

  bool fail(const std::string &message) { return failAt(pos_, message); }
  bool failAt(size_t at, const std::string &message) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    error_ = std::to_string(line) + ":" + std::to_string(col) + ": " + message;
    return false;
  }

  bool atEnd() const { return pos_ >= text_.size(); }
  char peek() const { return atEnd() ? '\0' : text_[pos_]; }

  void skipSpace() {
    while (!atEnd()) {
      char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
        break;
      ++pos_;
    }
  }

  static std::string describe(char c) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned char>(c));
      return buf;
    }
    return std::string("'") + c + "'";
  }

  bool parseValue(JsonValue &out, int depth) {
    if (atEnd())
      return fail("unexpected end of input, expected a value");
    char c = peek();
    switch (c) {
    case '{': return parseObject(out, depth);
    case '[': return parseArray(out, depth);
    case '"': {
      std::string s;
      if (!parseString(s))
        return false;
      out = JsonValue(std::move(s));
      return true;
    }
    case 't': return parseKeyword("true", JsonValue(true), out);
    case 'f': return parseKeyword("false", JsonValue(false), out);
    case 'n': return parseKeyword("null", JsonValue(nullptr), out);
    default:
      if (c == '-' || (c >= '0' && c <= '9'))
        return parseNumber(out);
      return fail("unexpected character " + describe(c) + ", expected a value");
    }
  }

  bool parseKeyword(std::string_view word, JsonValue value, JsonValue &out) {
    if (text_.substr(pos_, word.size()) != word)
      return fail("invalid literal, expected '" + std::string(word) + "'");
    pos_ += word.size();
    out = std::move(value);
    return true;
  }

  bool parseObject(JsonValue &out, int depth) {
    if (depth >= kMaxDepth)
      return fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    ++pos_; // '{'
    JsonValue::Object members;
    skipSpace();
    if (peek() == '}') {
      ++pos_;
      out = JsonValue(std::move(members));
      return true;
    }
    while (true) {
      skipSpace();
      if (peek() != '"')
        return atEnd() ? fail("unexpected end of input in an object")
                       : fail("expected a string key, found " + describe(peek()));
      size_t keyPos = pos_;
      std::string key;
      if (!parseString(key))
        return false;
      for (const auto &m : members)
        if (m.first == key)
          return failAt(keyPos, "duplicate key \"" + key + "\"");
      skipSpace();
      if (peek() != ':')
        return atEnd() ? fail("unexpected end of input in an object")
                       : fail("expected ':' after an object key, found " + describe(peek()));
      ++pos_;
      skipSpace();
      JsonValue value;
      if (!parseValue(value, depth + 1))
        return false;
      members.emplace_back(std::move(key), std::move(value));
      skipSpace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        out = JsonValue(std::move(members));
        return true;
      }
      return atEnd() ? fail("unexpected end of input in an object")
                     : fail("expected ',' or '}' after an object member, found " + describe(peek()));
    }
  }

  bool parseArray(JsonValue &out, int depth) {
    if (depth >= kMaxDepth)
      return fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    ++pos_; // '['
    JsonValue::Array items;
    skipSpace();
    if (peek() == ']') {
      ++pos_;
      out = JsonValue(std::move(items));
      return true;
    }
    while (true) {
      skipSpace();
      JsonValue value;
      if (!parseValue(value, depth + 1))
        return false;
      items.push_back(std::move(value));
      skipSpace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        out = JsonValue(std::move(items));
        return true;
      }
      return atEnd() ? fail("unexpected end of input in an array")
                     : fail("expected ',' or ']' after an array element, found " + describe(peek()));
    }
  }

  static void appendUtf8(std::string &s, uint32_t cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xc0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xe0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      s += static_cast<char>(0xf0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  bool parseHex4(uint32_t &cp) {
    if (pos_ + 4 > text_.size())
      return fail("unexpected end of input in a \\u escape");
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[pos_ + i];
      cp <<= 4;
      if (c >= '0' && c <= '9')
        cp |= c - '0';
      else if (c >= 'a' && c <= 'f')
        cp |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        cp |= c - 'A' + 10;
      else
        return failAt(pos_ + i, "invalid hex digit " + describe(c) + " in a \\u escape");
    }
    pos_ += 4;
    return true;
  }

  // Length of the well-formed UTF-8 sequence at pos_ (shortest form, no surrogates), or 0.
  size_t utf8SequenceLength() const {
    auto byte = [&](size_t i) { return static_cast<unsigned char>(text_[pos_ + i]); };
    unsigned char b0 = byte(0);
    size_t n;
    uint32_t cp;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      n = 2;
      cp = b0 & 0x1f;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      n = 3;
      cp = b0 & 0x0f;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      n = 4;
      cp = b0 & 0x07;
    } else {
      return 0;
    }
    if (pos_ + n > text_.size())
      return 0;
    for (size_t i = 1; i < n; ++i) {
      if ((byte(i) & 0xc0) != 0x80)
        return 0;
      cp = (cp << 6) | (byte(i) & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
    return n;
  }

  bool parseString(std::string &out) {
    ++pos_; // opening quote
    while (true) {
      if (atEnd())
        return fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20)
        return fail("unescaped control character " + describe(static_cast<char>(c)) +
                    " in a string");
      if (c >= 0x80) {
        size_t n = utf8SequenceLength();
        if (n == 0)
          return fail("invalid UTF-8 in a string");
        out.append(text_.substr(pos_, n));
        pos_ += n;
        continue;
      }
      if (c != '\\') {
        out += static_cast<char>(c);
        ++pos_;
        continue;
      }
      size_t escapePos = pos_;
      ++pos_;
      if (atEnd())
        return fail("unterminated string");
      char e = text_[pos_++];
      switch (e) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        uint32_t cp;
        if (!parseHex4(cp))
          return false;
        if (cp >= 0xdc00 && cp <= 0xdfff)
          return failAt(escapePos, "unpaired low surrogate in a \\u escape");
        if (cp >= 0xd800 && cp <= 0xdbff) {
          if (text_.substr(pos_, 2) != "\\u")
            return failAt(escapePos, "unpaired high surrogate in a \\u escape");
          pos_ += 2;
          uint32_t low;
          if (!parseHex4(low))
            return false;
          if (low < 0xdc00 || low > 0xdfff)
            return failAt(escapePos, "unpaired high surrogate in a \\u escape");
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        }
        appendUtf8(out, cp);
        break;
      }
      default:
        return failAt(escapePos, "invalid escape \\" + std::string(1, e) + " in a string");
      }
    }
  }

  bool parseNumber(JsonValue &out) {
    size_t start = pos_;
    auto digits = [&] {
      size_t from = pos_;
      while (!atEnd() && peek() >= '0' && peek() <= '9')
        ++pos_;
      return pos_ - from;
    };
    if (peek() == '-')
      ++pos_;
    if (peek() == '0') {
      ++pos_;
      if (peek() >= '0' && peek() <= '9')
        return fail("leading zeros are not allowed in a number");
    } else if (digits() == 0) {
      return fail("expected a digit in a number");
    }
    bool integral = true;
    if (peek() == '.') {
      integral = false;
      ++pos_;
      if (digits() == 0)
        return fail("expected a digit after the decimal point");
    }
    if (peek() == 'e' || peek() == 'E') {
      integral = false;
      ++pos_;
      if (peek() == '+' || peek() == '-')
        ++pos_;
      if (digits() == 0)
        return fail("expected a digit in the exponent");
    }
    // strtoll/strtod need a terminated string; numbers are short.
    std::string literal(text_.substr(start, pos_ - start));
    if (integral) {
      errno = 0;
      long long v = std::strtoll(literal.c_str(), nullptr, 10);
      if (errno != ERANGE) {
        out = JsonValue(static_cast<int64_t>(v));
        return true;
      }
    }
    errno = 0;
    double d = std::strtod(literal.c_str(), nullptr);
    if (errno == ERANGE && std::isinf(d))
      return failAt(start, "number " + literal + " is out of range");
    out = JsonValue(d);
    return true;
  }
};

void writeString(std::string &out, const std::string &s) {
  out += '"';
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    case '\b': out += "\\b"; break;
    case '\f': out += "\\f"; break;
    default:
      if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out += ch;
      }
    }
  }
  out += '"';
}

void writeValue(std::string &out, const JsonValue &v) {
  switch (v.kind()) {
  case JsonValue::Kind::Null: out += "null"; return;
  case JsonValue::Kind::Bool: out += v.asBool() ? "true" : "false"; return;
  case JsonValue::Kind::Int: out += std::to_string(v.asInt()); return;
  case JsonValue::Kind::Double: {
    double d = v.asDouble();
    if (!std::isfinite(d)) {
      out += "null";
      return;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", d);
    out += buf;
    if (!std::strpbrk(buf, ".eE"))
      out += ".0";
    return;
  }
  case JsonValue::Kind::String: writeString(out, v.asString()); return;
  case JsonValue::Kind::Array: {
    out += '[';
    bool first = true;
    for (const auto &item : v.asArray()) {
      if (!first)
        out += ',';
      first = false;
      writeValue(out, item);
    }
    out += ']';
    return;
  }
  case JsonValue::Kind::Object: {
    out += '{';
    bool first = true;
    for (const auto &member : v.asObject()) {
      if (!first)
        out += ',';
      first = false;
      writeString(out, member.first);
      out += ':';
      writeValue(out, member.second);
    }
    out += '}';
    return;
  }
  }
}

} // namespace

std::string parseJson(std::string_view text, JsonValue &out) {
  return JsonParser(text).parseDocument(out);
}

std::string writeJson(const JsonValue &value) {
  std::string out;
  writeValue(out, value);
  return out;
}

} // namespace shardc::rt
