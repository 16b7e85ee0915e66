// What the emitter, the loader and the tests' manifest builder share of the FlatBuffers
// manifest (runtime/schema/artifact.fbs) beyond the generated header: step kinds by name
// and the generic, type-table driven step attribute writer. Header-only: the compiler
// includes it without linking anything new.
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

// The mini-reflection type table of `kind`'s attribute table (the member of union StepAttrs
// named as the kind), and that member in `member`; nullptr (and NONE) when the kind takes no
// attributes.
inline const flatbuffers::TypeTable *stepAttrsTable(std::string_view kind, fb::StepAttrs &member) {
  const flatbuffers::TypeTable *u = fb::StepAttrsTypeTable();
  for (size_t i = 1; i < u->num_elems; ++i)
    if (kind == u->names[i]) {
      member = static_cast<fb::StepAttrs>(i);
      return u->type_refs[u->type_codes[i].sequence_ref]();
    }
  member = fb::StepAttrs::NONE;
  return nullptr;
}

// The enum type table of field `f` of `table`, or nullptr when the field is no enum.
inline const flatbuffers::TypeTable *fieldEnum(const flatbuffers::TypeTable *table, size_t f) {
  const flatbuffers::TypeCode &tc = table->type_codes[f];
  if (tc.sequence_ref < 0 || tc.base_type == flatbuffers::ET_SEQUENCE)
    return nullptr;
  return table->type_refs[tc.sequence_ref]();
}

// Builds `kind`'s attribute table from `attrs`, generically from the schema's type tables:
// every attribute must be a field of that table with the field's type (an int is accepted
// for a double; an enum field takes one of its names as a string). Sets `type` and `out`
// (NONE and null for no attributes). Returns "" or a one-line error naming the attribute.
// Forces defaults on `b`: a value equal to the schema default must still be stored, since
// an absent field means "the kernel's default".
inline std::string buildStepAttrs(flatbuffers::FlatBufferBuilder &b, std::string_view kind, const Attrs &attrs,
                                  fb::StepAttrs &type, flatbuffers::Offset<void> &out) {
  type = fb::StepAttrs::NONE;
  out = 0;
  if (attrs.all().empty())
    return "";
  fb::StepAttrs member;
  const flatbuffers::TypeTable *table = stepAttrsTable(kind, member);
  if (!table)
    return "kind '" + std::string(kind) + "' takes no attributes in runtime/schema/artifact.fbs, but has '" +
           attrs.all().begin()->first + "'";
  struct Field {
    flatbuffers::voffset_t at;
    flatbuffers::ElementaryType base;
    int64_t i = 0;
    double d = 0;
    flatbuffers::uoffset_t offset = 0;
  };
  std::vector<Field> fields;
  for (const auto &[name, value] : attrs.all()) {
    size_t f = 0;
    while (f < table->num_elems && name != table->names[f])
      ++f;
    std::string where = "attribute '" + name + "' of kind '" + std::string(kind) + "'";
    if (f == table->num_elems)
      return where + " is not declared in runtime/schema/artifact.fbs";
    const flatbuffers::TypeCode &tc = table->type_codes[f];
    Field field{flatbuffers::FieldIndexToOffset(static_cast<flatbuffers::voffset_t>(f)),
                static_cast<flatbuffers::ElementaryType>(tc.base_type)};
    const flatbuffers::TypeTable *enumTable = fieldEnum(table, f);
    bool ok = true;
    if (tc.is_repeating) {
      if (field.base == flatbuffers::ET_LONG && std::holds_alternative<std::vector<int64_t>>(value))
        field.offset = b.CreateVector(std::get<std::vector<int64_t>>(value)).o;
      else if (field.base == flatbuffers::ET_DOUBLE && std::holds_alternative<std::vector<double>>(value))
        field.offset = b.CreateVector(std::get<std::vector<double>>(value)).o;
      else if (field.base == flatbuffers::ET_STRING && std::holds_alternative<std::vector<std::string>>(value))
        field.offset = b.CreateVectorOfStrings(std::get<std::vector<std::string>>(value)).o;
      else
        ok = false;
    } else if (enumTable) {
      ok = field.base == flatbuffers::ET_UCHAR && std::holds_alternative<std::string>(value);
      if (ok) {
        const std::string &text = std::get<std::string>(value);
        size_t e = 0;
        while (e < enumTable->num_elems && text != enumTable->names[e])
          ++e;
        if (e == enumTable->num_elems) {
          std::string names;
          for (size_t k = 0; k < enumTable->num_elems; ++k)
            names += std::string(k ? ", " : "") + enumTable->names[k];
          return where + " is '" + text + "', not one of " + names;
        }
        field.i = enumTable->values ? enumTable->values[e] : static_cast<int64_t>(e);
      }
    } else if (field.base == flatbuffers::ET_BOOL && std::holds_alternative<bool>(value)) {
      field.i = std::get<bool>(value);
    } else if (field.base == flatbuffers::ET_LONG && std::holds_alternative<int64_t>(value)) {
      field.i = std::get<int64_t>(value);
    } else if (field.base == flatbuffers::ET_DOUBLE && std::holds_alternative<double>(value)) {
      field.d = std::get<double>(value);
    } else if (field.base == flatbuffers::ET_DOUBLE && std::holds_alternative<int64_t>(value)) {
      field.d = static_cast<double>(std::get<int64_t>(value));
    } else if (field.base == flatbuffers::ET_STRING && std::holds_alternative<std::string>(value)) {
      field.offset = b.CreateString(std::get<std::string>(value)).o;
    } else {
      ok = false;
    }
    if (!ok)
      return where + " has the wrong type for its field in runtime/schema/artifact.fbs";
    fields.push_back(field);
  }
  b.ForceDefaults(true);
  flatbuffers::uoffset_t start = b.StartTable();
  for (const Field &f : fields) {
    if (f.offset)
      b.AddOffset(f.at, flatbuffers::Offset<void>(f.offset));
    else if (f.base == flatbuffers::ET_LONG)
      b.AddElement<int64_t>(f.at, f.i, 0);
    else if (f.base == flatbuffers::ET_DOUBLE)
      b.AddElement<double>(f.at, f.d, 0);
    else
      b.AddElement<uint8_t>(f.at, static_cast<uint8_t>(f.i), 0);
  }
  type = member;
  out = flatbuffers::Offset<void>(b.EndTable(start));
  return "";
}

} // namespace shardc::rt
