// formula_texts: the canonical text of formulas given by their extension history, exactly as
// invert_fast.Formula writes them (the contract the search's tie-break on text rests on).
//
// A formula of the search is built from an atom by joining one atom at a time: f <- f op a. Its
// history is a row of tokens: the first atom a0 (token a0), then op * 2K + a per step (op 1 = AND,
// 2 = OR; atom a < K is concept a, a >= K its negation), then -1 padding. The canonical form is a
// chain of levels: joining with the operator of the top level adds the atom to it (once: a repeated
// operand changes nothing); another operator starts a new level whose operands are the atom and the
// previous formula. A level's text is its operands' displays joined by " & " or " | ", sorted by the
// operands' texts (byte order of UTF-8, i.e. code point order, as Python sorts str); a compound
// operand displays in parentheses. length = atom occurrences.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace invert_fast {

// hist: [M, T] int64 histories;  atom_text: [bytes] uint8 UTF-8 texts of the 2K atoms, concatenated;
// atom_offsets: [2K + 1] int64 (atom a is bytes offsets[a] .. offsets[a + 1]).
// returns: bytes [total] uint8 (texts concatenated), offsets [M + 1] int64, lengths [M] int64.
std::tuple<at::Tensor, at::Tensor, at::Tensor> formula_texts_cpu(const at::Tensor& hist, const at::Tensor& atom_text,
                                                                 const at::Tensor& atom_offsets);

inline void check_atom_texts(const at::Tensor& atom_text, const at::Tensor& atom_offsets, const char* op) {
  TORCH_CHECK_TYPE(atom_text.scalar_type() == at::kByte && atom_text.dim() == 1, op,
                   ": atom_text must be 1-D uint8 UTF-8 bytes, got ", atom_text.scalar_type(), " of shape ",
                   atom_text.sizes());
  TORCH_CHECK_VALUE(atom_offsets.scalar_type() == at::kLong && atom_offsets.dim() == 1 && atom_offsets.size(0) >= 1 &&
                        atom_offsets.size(0) % 2 == 1,
                    op, ": atom_offsets must be [2K + 1] int64, got ", atom_offsets.scalar_type(), " of shape ",
                    atom_offsets.sizes());
  TORCH_CHECK_VALUE(atom_text.device().is_cpu() && atom_offsets.device().is_cpu(), op,
                    ": atom texts must be on the CPU, got ", atom_text.device());
}

inline void check_histories(const at::Tensor& hist, const char* op) {
  TORCH_CHECK_VALUE(hist.dim() == 2 && hist.size(1) >= 1, op, ": hist must be [M, T] with T >= 1, got shape ",
                    hist.sizes());
  TORCH_CHECK_TYPE(hist.scalar_type() == at::kLong, op, ": hist must be int64, got ", hist.scalar_type());
}

// The atom texts of a concept set, as string views into the caller's byte buffer.
class AtomTexts {
 public:
  AtomTexts(const at::Tensor& bytes, const at::Tensor& offsets)
      : base_(reinterpret_cast<const char*>(bytes.const_data_ptr<uint8_t>())),
        off_(offsets.const_data_ptr<int64_t>()),
        count_(offsets.size(0) - 1),
        total_(bytes.size(0)) {
    for (int64_t a = 0; a < count_; ++a) {
      TORCH_CHECK_VALUE(off_[a] >= 0 && off_[a] <= off_[a + 1] && off_[a + 1] <= total_,
                        "atom_offsets must be non-decreasing within the ", total_, " text bytes, got offsets[", a,
                        "] = ", off_[a], " and offsets[", a + 1, "] = ", off_[a + 1]);
    }
  }
  int64_t count() const { return count_; }  // 2K
  std::string_view operator[](int64_t a) const {
    return std::string_view(base_ + off_[a], static_cast<size_t>(off_[a + 1] - off_[a]));
  }

 private:
  const char* base_;
  const int64_t* off_;
  int64_t count_, total_;
};

// Canonical length (atom occurrences) of one history, without building its text.
inline int64_t canonical_length(const int64_t* hist, int64_t T, int64_t k2) {
  int64_t len = 0, top_op = -1, top_start = 0;  // atoms of the top level: hist positions top_start..t-1
  for (int64_t t = 0; t < T && hist[t] >= 0; ++t) {
    const int64_t op = hist[t] / k2, a = hist[t] % k2;
    if (t == 0) {
      top_op = 0;
      len = 1;
      continue;
    }
    if (top_op == 0 || top_op == op) {
      // The top level's atoms are those of tokens top_start..t-1 (a token that repeated one added nothing
      // and names one of them too); a repeated operand changes nothing.
      bool repeated = false;
      for (int64_t u = top_start; u < t; ++u) repeated |= hist[u] % k2 == a;
      if (!repeated) {
        ++len;
        top_op = op;
      }
    } else {
      top_start = t;
      top_op = op;
      ++len;
    }
  }
  return len;
}

// Canonical text and length of one history (see the header comment).
inline std::string canonical_text(const int64_t* hist, int64_t T, const AtomTexts& atoms, int64_t* length) {
  const int64_t k2 = atoms.count();
  struct Level {
    int64_t op;  // 0: a single atom, 1: AND, 2: OR
    std::vector<int64_t> atoms;
  };
  std::vector<Level> levels;
  for (int64_t t = 0; t < T && hist[t] >= 0; ++t) {
    const int64_t op = hist[t] / k2, a = hist[t] % k2;
    TORCH_CHECK_VALUE(hist[t] < 3 * k2 && (t == 0) == (op == 0), "formula history: token ", hist[t], " at position ", t,
                      " is not ", t == 0 ? "an atom" : "an AND/OR join", " of ", k2, " atoms");
    if (levels.empty()) {
      levels.push_back({0, {a}});
      continue;
    }
    Level& top = levels.back();
    if (top.op == 0) {
      if (a != top.atoms[0]) {
        top.op = op;
        top.atoms.push_back(a);
      }
    } else if (top.op == op) {
      if (std::find(top.atoms.begin(), top.atoms.end(), a) == top.atoms.end()) top.atoms.push_back(a);
    } else {
      levels.push_back({op, {a}});
    }
  }
  TORCH_CHECK_VALUE(!levels.empty(), "formula history: expected at least one atom, got an empty row");
  std::string text;
  int64_t len = 0;
  for (size_t i = 0; i < levels.size(); ++i) {
    const Level& lv = levels[i];
    len += static_cast<int64_t>(lv.atoms.size());
    if (lv.op == 0) {
      text = std::string(atoms[lv.atoms[0]]);
      continue;
    }
    // (sort key, display) of each operand: atoms show as themselves, the lower level in parentheses.
    std::vector<std::pair<std::string_view, std::string>> parts;
    parts.reserve(lv.atoms.size() + 1);
    for (const int64_t a : lv.atoms) parts.emplace_back(atoms[a], std::string(atoms[a]));
    const std::string child = std::move(text);
    if (i > 0) parts.emplace_back(std::string_view(child), "(" + child + ")");
    std::sort(parts.begin(), parts.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    std::string out;
    const char* sep = lv.op == 1 ? " & " : " | ";
    for (size_t j = 0; j < parts.size(); ++j) {
      if (j) out += sep;
      out += parts[j].second;
    }
    text = std::move(out);
  }
  *length = len;
  return text;
}

}  // namespace invert_fast
