// CRC-32 and RFC 1951 inflate for Npz.cpp's builds without zlib (Inflate.h). Huffman codes are
// decoded through one table per code indexed by the next `maxLen` input bits (LSB first, as
// DEFLATE packs them); every entry holds the symbol and its code length.
#include "Inflate.h"

#include <array>
#include <cstring>
#include <vector>

namespace shardc::rt {

namespace {

// Slicing by 8: kCrc[k][b] is the CRC of byte b followed by k zero bytes.
struct CrcTables {
  uint32_t t[8][256];
  CrcTables() {
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t c = b;
      for (int k = 0; k < 8; ++k)
        c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][b] = c;
    }
    for (int k = 1; k < 8; ++k)
      for (uint32_t b = 0; b < 256; ++b)
        t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
  }
};

const CrcTables &crcTables() {
  static const CrcTables tables;
  return tables;
}

// Reads DEFLATE's LSB-first bit stream. Past the input's end it supplies zero bits and counts
// them, so that decoding never reads out of bounds and overran() tells a truncated stream.
class BitReader {
public:
  explicit BitReader(std::string_view in)
      : p_(reinterpret_cast<const uint8_t *>(in.data())), end_(p_ + in.size()) {}

  uint32_t peek(int n) {
    if (count_ < n)
      refill();
    return static_cast<uint32_t>(buf_ & ((uint64_t(1) << n) - 1));
  }
  void drop(int n) {
    buf_ >>= n;
    count_ -= n;
  }
  uint32_t take(int n) {
    uint32_t v = peek(n);
    drop(n);
    return v;
  }
  void alignToByte() { drop(count_ % 8); }
  bool overran() const { return padded_ > count_; }

private:
  const uint8_t *p_, *end_;
  uint64_t buf_ = 0;
  int count_ = 0;      // bits in buf_
  int64_t padded_ = 0; // zero bits supplied past the end (those at the top of buf_ come first)

  void refill() {
    while (count_ <= 56) {
      uint64_t byte = 0;
      if (p_ < end_)
        byte = *p_++;
      else
        padded_ += 8;
      buf_ |= byte << count_;
      count_ += 8;
    }
  }
};

// A canonical Huffman code as a lookup table: entry = symbol << 4 | length, 0 when no code of
// the table starts with those bits.
struct HuffmanTable {
  std::vector<uint16_t> entries;
  int maxLen = 0;

  // lengths[s] is symbol s's code length (0: unused). Fails on an over-subscribed set; an
  // incomplete one is accepted (its missing codes decode as errors), as DEFLATE's single-
  // distance-code case needs.
  bool build(const uint8_t *lengths, int symbols) {
    int perLength[16] = {};
    maxLen = 0;
    for (int s = 0; s < symbols; ++s) {
      ++perLength[lengths[s]];
      if (lengths[s] > maxLen)
        maxLen = lengths[s];
    }
    perLength[0] = 0;
    int open = 1; // codes still available at the current length
    for (int len = 1; len <= 15; ++len) {
      open = open * 2 - perLength[len];
      if (open < 0)
        return false;
    }
    uint32_t firstCode[16] = {};
    for (int len = 1, code = 0; len <= 15; ++len) {
      code = (code + perLength[len - 1]) << 1;
      firstCode[len] = static_cast<uint32_t>(code);
    }
    entries.assign(size_t(1) << maxLen, 0);
    for (int s = 0; s < symbols; ++s) {
      int len = lengths[s];
      if (len == 0)
        continue;
      uint32_t code = firstCode[len]++, reversed = 0;
      for (int b = 0; b < len; ++b)
        reversed |= ((code >> b) & 1u) << (len - 1 - b);
      for (size_t at = reversed; at < entries.size(); at += size_t(1) << len)
        entries[at] = static_cast<uint16_t>(s << 4 | len);
    }
    return true;
  }

  // The next symbol, or -1 for bits that start no code.
  int decode(BitReader &bits) const {
    uint16_t e = entries[bits.peek(maxLen)];
    if ((e & 15) == 0)
      return -1;
    bits.drop(e & 15);
    return e >> 4;
  }
};

// Length symbols 257..285 and distance symbols 0..29: base values and extra bits. The bases
// grow by 2^extra per symbol; symbol 285 is the exception (258, no extra bits).
struct LengthDistanceTables {
  uint16_t lengthBase[29], distanceBase[30];
  uint8_t lengthExtra[29], distanceExtra[30];
  LengthDistanceTables() {
    for (int i = 0, base = 3; i < 28; ++i) {
      lengthExtra[i] = static_cast<uint8_t>(i < 8 ? 0 : i / 4 - 1);
      lengthBase[i] = static_cast<uint16_t>(base);
      base += 1 << lengthExtra[i];
    }
    lengthExtra[28] = 0;
    lengthBase[28] = 258;
    for (int i = 0, base = 1; i < 30; ++i) {
      distanceExtra[i] = static_cast<uint8_t>(i < 4 ? 0 : i / 2 - 1);
      distanceBase[i] = static_cast<uint16_t>(base);
      base += 1 << distanceExtra[i];
    }
  }
};

class Inflater {
public:
  Inflater(std::string_view in, std::string &out) : bits_(in), out_(out) {}

  std::string run() {
    bool last = false;
    while (!last) {
      last = bits_.take(1) != 0;
      int type = static_cast<int>(bits_.take(2));
      std::string err;
      if (type == 0)
        err = stored();
      else if (type == 1)
        err = fixedCodes();
      else if (type == 2)
        err = dynamicCodes();
      else
        err = "reserved block type 3";
      if (!err.empty())
        return err;
      if (bits_.overran())
        return "truncated deflate stream";
    }
    if (pos_ != out_.size())
      return "deflate stream ended after " + std::to_string(pos_) + " of " +
             std::to_string(out_.size()) + " bytes";
    return "";
  }

private:
  BitReader bits_;
  std::string &out_;
  size_t pos_ = 0;

  std::string stored() {
    bits_.alignToByte();
    uint32_t len = bits_.take(16), nlen = bits_.take(16);
    if ((len ^ 0xffffu) != nlen)
      return "stored block length check failed";
    if (len > out_.size() - pos_)
      return "more data than expected";
    for (uint32_t i = 0; i < len; ++i)
      out_[pos_++] = static_cast<char>(bits_.take(8));
    return "";
  }

  std::string fixedCodes() {
    static const std::array<HuffmanTable, 2> codes = [] {
      uint8_t lengths[288 + 30];
      std::memset(lengths, 8, 144);
      std::memset(lengths + 144, 9, 112);
      std::memset(lengths + 256, 7, 24);
      std::memset(lengths + 280, 8, 8);
      std::memset(lengths + 288, 5, 30);
      std::array<HuffmanTable, 2> t;
      t[0].build(lengths, 288);
      t[1].build(lengths + 288, 30);
      return t;
    }();
    return huffmanBlock(codes[0], codes[1]);
  }

  std::string dynamicCodes() {
    int nLitLen = static_cast<int>(bits_.take(5)) + 257;
    int nDist = static_cast<int>(bits_.take(5)) + 1;
    int nCodeLen = static_cast<int>(bits_.take(4)) + 4;
    if (nLitLen > 286 || nDist > 30)
      return "too many length or distance symbols";
    static const uint8_t kOrder[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5,
                                       11, 4, 12, 3, 13, 2, 14, 1, 15};
    uint8_t codeLenLengths[19] = {};
    for (int i = 0; i < nCodeLen; ++i)
      codeLenLengths[kOrder[i]] = static_cast<uint8_t>(bits_.take(3));
    HuffmanTable codeLen;
    if (!codeLen.build(codeLenLengths, 19))
      return "bad code length code";
    uint8_t lengths[286 + 30] = {};
    for (int n = 0; n < nLitLen + nDist;) {
      int sym = codeLen.decode(bits_);
      if (sym < 0)
        return "bad code length symbol";
      if (sym < 16) {
        lengths[n++] = static_cast<uint8_t>(sym);
        continue;
      }
      int repeat;
      uint8_t value = 0;
      if (sym == 16) {
        if (n == 0)
          return "repeat of no previous length";
        value = lengths[n - 1];
        repeat = 3 + static_cast<int>(bits_.take(2));
      } else if (sym == 17) {
        repeat = 3 + static_cast<int>(bits_.take(3));
      } else {
        repeat = 11 + static_cast<int>(bits_.take(7));
      }
      if (n + repeat > nLitLen + nDist)
        return "code lengths overflow";
      while (repeat--)
        lengths[n++] = value;
    }
    if (bits_.overran())
      return "truncated deflate stream";
    if (lengths[256] == 0)
      return "no end-of-block code";
    HuffmanTable litLen, dist;
    if (!litLen.build(lengths, nLitLen) || !dist.build(lengths + nLitLen, nDist))
      return "over-subscribed literal/length or distance code";
    return huffmanBlock(litLen, dist);
  }

  std::string huffmanBlock(const HuffmanTable &litLen, const HuffmanTable &dist) {
    static const LengthDistanceTables t;
    char *out = out_.data();
    size_t size = out_.size();
    while (true) {
      int sym = litLen.decode(bits_);
      if (sym < 0)
        return "bad literal/length code";
      if (sym < 256) {
        if (pos_ == size)
          return "more data than expected";
        out[pos_++] = static_cast<char>(sym);
        continue;
      }
      if (sym == 256)
        return "";
      if (sym > 285)
        return "bad length symbol " + std::to_string(sym);
      size_t length = t.lengthBase[sym - 257] + bits_.take(t.lengthExtra[sym - 257]);
      int d = dist.decode(bits_);
      if (d < 0 || d >= 30)
        return "bad distance code";
      size_t distance = t.distanceBase[d] + bits_.take(t.distanceExtra[d]);
      if (distance > pos_)
        return "distance too far back";
      if (length > size - pos_)
        return "more data than expected";
      if (bits_.overran())
        return "truncated deflate stream";
      // Byte by byte: a distance shorter than the length repeats what it is writing.
      const char *from = out + pos_ - distance;
      for (size_t i = 0; i < length; ++i)
        out[pos_ + i] = from[i];
      pos_ += length;
    }
  }
};

} // namespace

uint32_t crc32Update(uint32_t crc, const void *data, size_t n) {
  const CrcTables &k = crcTables();
  const uint8_t *p = static_cast<const uint8_t *>(data);
  uint32_t c = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    uint32_t lo = c ^ (uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
                       uint32_t(p[3]) << 24);
    c = k.t[7][lo & 0xff] ^ k.t[6][(lo >> 8) & 0xff] ^ k.t[5][(lo >> 16) & 0xff] ^
        k.t[4][lo >> 24] ^ k.t[3][p[4]] ^ k.t[2][p[5]] ^ k.t[1][p[6]] ^ k.t[0][p[7]];
  }
  while (n--)
    c = k.t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return ~c;
}

std::string inflateRawBuiltin(std::string_view in, size_t expected, std::string &out) {
  out.assign(expected, '\0');
  return Inflater(in, out).run();
}

} // namespace shardc::rt
