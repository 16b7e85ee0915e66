// Pieces of the FlatBuffers manifest (runtime/schema/artifact.fbs) that both writers share:
// the compiler's emitter and the tests' manifest builder. Header-only: the compiler includes
// it without linking anything new.
#pragma once

#include "shardc/runtime/Kernel.h"
#include "shardc/runtime/Tensor.h"
#include "shardc/runtime/artifact_generated.h"

#include <optional>
#include <string_view>
#include <type_traits>
#include <variant>

namespace shardc::rt {

// The schema's StepKind named `name` (a kernel's registry name), or nullopt when the schema
// does not declare it.
inline std::optional<fb::StepKind> stepKindByName(std::string_view name) {
  const fb::StepKind *values = fb::EnumValuesStepKind();
  for (size_t i = 0; i <= static_cast<size_t>(fb::StepKind::MAX); ++i)
    if (name == fb::EnumNameStepKind(values[i]))
      return values[i];
  return std::nullopt;
}

inline fb::DType toSchema(DType t) { return static_cast<fb::DType>(static_cast<uint8_t>(t)); }

// A step's attributes as the schema's typed (name, value) list, in name order.
inline flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Attr>>>
buildAttrs(flatbuffers::FlatBufferBuilder &b, const Attrs &attrs) {
  std::vector<flatbuffers::Offset<fb::Attr>> list;
  for (const auto &[key, value] : attrs.all()) {
    fb::AttrValue type = fb::AttrValue::NONE;
    flatbuffers::Offset<void> v = std::visit(
        [&](const auto &x) -> flatbuffers::Offset<void> {
          using V = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<V, bool>) {
            type = fb::AttrValue::BoolValue;
            return fb::CreateBoolValue(b, x).Union();
          } else if constexpr (std::is_same_v<V, int64_t>) {
            type = fb::AttrValue::IntValue;
            return fb::CreateIntValue(b, x).Union();
          } else if constexpr (std::is_same_v<V, double>) {
            type = fb::AttrValue::DoubleValue;
            return fb::CreateDoubleValue(b, x).Union();
          } else if constexpr (std::is_same_v<V, std::string>) {
            type = fb::AttrValue::StringValue;
            return fb::CreateStringValue(b, b.CreateString(x)).Union();
          } else if constexpr (std::is_same_v<V, std::vector<int64_t>>) {
            type = fb::AttrValue::IntsValue;
            return fb::CreateIntsValue(b, b.CreateVector(x)).Union();
          } else if constexpr (std::is_same_v<V, std::vector<double>>) {
            type = fb::AttrValue::DoublesValue;
            return fb::CreateDoublesValue(b, b.CreateVector(x)).Union();
          } else {
            static_assert(std::is_same_v<V, std::vector<std::string>>, "an AttrValue type the schema lacks");
            type = fb::AttrValue::StringsValue;
            return fb::CreateStringsValue(b, b.CreateVectorOfStrings(x)).Union();
          }
        },
        value);
    list.push_back(fb::CreateAttr(b, b.CreateString(key), type, v));
  }
  return b.CreateVector(list);
}

} // namespace shardc::rt
