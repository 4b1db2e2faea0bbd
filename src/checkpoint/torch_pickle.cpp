#include "checkpoint/torch_pickle.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "checkpoint/zip_directory.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"

namespace convkit::checkpoint {
namespace {

// A pickled value. Lists, dicts and tuples are shared through the memo, hence shared_ptr.
struct Value;
using ValuePtr = std::shared_ptr<Value>;
struct Value {
  enum class Kind { None, Bool, Int, Float, String, Tuple, List, Dict, Global, Tensor } kind = Kind::None;
  int64_t i = 0;  // Bool and Int
  double f = 0;
  std::string s;                // String; Global as "module.name"
  std::vector<ValuePtr> items;  // Tuple, List; Dict as key, value, key, value, ...
  torch::Tensor tensor;         // Tensor (also an untyped storage, as a flat tensor)
  int depth = 0;                // how deeply items nest inside it
};

// A state_dict nests a few levels deep. A hostile file nesting a million tuples would overflow
// the stack when the chain of shared pointers is destroyed.
constexpr int kMaxNesting = 100;

ValuePtr make(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

c10::optional<torch::ScalarType> storage_dtype(const std::string& global) {
  static const std::map<std::string, torch::ScalarType> types = {
      {"torch.FloatStorage", torch::kFloat}, {"torch.DoubleStorage", torch::kDouble},
      {"torch.HalfStorage", torch::kHalf},   {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kLong},   {"torch.IntStorage", torch::kInt},
      {"torch.ShortStorage", torch::kShort}, {"torch.CharStorage", torch::kChar},
      {"torch.ByteStorage", torch::kByte},   {"torch.BoolStorage", torch::kBool}};
  auto it = types.find(global);
  if (it == types.end()) return c10::nullopt;
  return it->second;
}

class Unpickler {
 public:
  Unpickler(const std::string& name, const std::vector<uint8_t>& data, caffe2::serialize::PyTorchStreamReader& zip)
      : name_(name), data_(data), zip_(zip) {}

  ValuePtr run() {
    while (true) {
      const uint8_t op = byte();
      switch (op) {
        case 0x80:
          byte();
          break;  // PROTO
        case 0x95:
          bytes(8);
          break;  // FRAME (protocol 4)
        case '.':
          return pop();  // STOP
        case '(':
          marks_.push_back(stack_.size());
          break;  // MARK
        case 'N':
          push(make(Value::Kind::None));
          break;
        case 0x88:
          push_int(1, Value::Kind::Bool);
          break;  // NEWTRUE
        case 0x89:
          push_int(0, Value::Kind::Bool);
          break;  // NEWFALSE
        case 'K':
          push_int(byte());
          break;  // BININT1
        case 'M':
          push_int(uint_le(2));
          break;  // BININT2
        case 'J':
          push_int(static_cast<int32_t>(uint_le(4)));
          break;  // BININT
        case 0x8a:
          push_int(long1());
          break;  // LONG1
        case 'G':
          push_float();
          break;  // BINFLOAT
        case 'X':
          push_string(uint_le(4));
          break;  // BINUNICODE
        case 0x8c:
          push_string(byte());
          break;  // SHORT_BINUNICODE
        case 'T':
          push_string(uint_le(4));
          break;  // BINSTRING
        case 'U':
          push_string(byte());
          break;  // SHORT_BINSTRING
        case 'c':
          global();
          break;
        case 0x93:
          stack_global();
          break;  // STACK_GLOBAL (protocol 4)
        case 0x8d:
          push_string(uint_le(8));
          break;  // BINUNICODE8 (protocol 4)
        case ')':
          push(make(Value::Kind::Tuple));
          break;  // EMPTY_TUPLE
        case ']':
          push(make(Value::Kind::List));
          break;  // EMPTY_LIST
        case '}':
          push(make(Value::Kind::Dict));
          break;  // EMPTY_DICT
        case 't':
          tuple(pop_mark());
          break;
        case 0x85:
          tuple(pop_n(1));
          break;  // TUPLE1
        case 0x86:
          tuple(pop_n(2));
          break;  // TUPLE2
        case 0x87:
          tuple(pop_n(3));
          break;  // TUPLE3
        case 'q':
          memo_put(byte());
          break;  // BINPUT
        case 'r':
          memo_put(uint_le(4));
          break;  // LONG_BINPUT
        case 0x94:
          memo_put(memo_.size());
          break;  // MEMOIZE
        case 'h':
          push(memo_get(byte()));
          break;  // BINGET
        case 'j':
          push(memo_get(uint_le(4)));
          break;  // LONG_BINGET
        case 'a':
          append({pop()});
          break;  // APPEND
        case 'e':
          append(pop_mark());
          break;  // APPENDS
        case 's':
          setitems(pop_n(2));
          break;  // SETITEM
        case 'u':
          setitems(pop_mark());
          break;  // SETITEMS
        case 'R':
          reduce();
          break;
        case 'b':
          pop();
          break;  // BUILD: drops OrderedDict's _metadata state
        case 'Q':
          persistent_load();
          break;  // BINPERSID
        default:
          fail("unsupported pickle opcode 0x" + hex(op) + " at byte " + std::to_string(pos_ - 1));
      }
      if (stack_.size() > 1000000) fail("pickle stack too deep");
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw file_error(name_, "invalid state_dict: " + what); }

  static std::string hex(uint8_t v) {
    const char* digits = "0123456789abcdef";
    return {digits[v >> 4], digits[v & 15]};
  }

  uint8_t byte() {
    if (pos_ >= data_.size()) fail("pickle data ends early");
    return data_[pos_++];
  }
  const uint8_t* bytes(size_t n) {
    if (n > data_.size() - pos_) fail("pickle data ends early");
    const uint8_t* p = data_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint64_t uint_le(int n) {
    const uint8_t* p = bytes(n);
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | p[k];
    return v;
  }
  int64_t long1() {
    const uint8_t n = byte();
    if (n > 8) fail("integer too large");
    const uint8_t* p = bytes(n);
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | p[k];
    if (n > 0 && n < 8 && (p[n - 1] & 0x80)) v |= ~uint64_t(0) << (8 * n);  // sign-extend
    return static_cast<int64_t>(v);
  }

  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  void push_int(int64_t i, Value::Kind kind = Value::Kind::Int) {
    auto v = make(kind);
    v->i = i;
    push(v);
  }
  void push_float() {
    const uint8_t* p = bytes(8);
    uint64_t bits = 0;
    for (int k = 0; k < 8; ++k) bits = (bits << 8) | p[k];  // big-endian
    auto v = make(Value::Kind::Float);
    std::memcpy(&v->f, &bits, 8);
    push(v);
  }
  void push_string(uint64_t n) {
    if (n > data_.size()) fail("string length out of range");
    const uint8_t* p = bytes(n);
    auto v = make(Value::Kind::String);
    v->s.assign(reinterpret_cast<const char*>(p), n);
    push(v);
  }
  std::string line() {
    std::string s;
    for (uint8_t c = byte(); c != '\n'; c = byte()) s += static_cast<char>(c);
    return s;
  }
  void global() {
    auto v = make(Value::Kind::Global);
    v->s = line();
    v->s += "." + line();
    push(v);
  }

  // Protocol 4's GLOBAL: the module and the name are strings on the stack.
  void stack_global() {
    const ValuePtr name = pop(), module = pop();
    if (module->kind != Value::Kind::String || name->kind != Value::Kind::String)
      fail("STACK_GLOBAL needs two strings");
    auto v = make(Value::Kind::Global);
    v->s = module->s + "." + name->s;
    push(v);
  }

  ValuePtr pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("pickle stack underflow");
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  std::vector<ValuePtr> pop_n(size_t n) {
    if (stack_.size() < n || (!marks_.empty() && stack_.size() - n < marks_.back())) fail("pickle stack underflow");
    std::vector<ValuePtr> out(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
    stack_.resize(stack_.size() - n);
    return out;
  }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty()) fail("pickle MARK missing");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> out(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return out;
  }
  ValuePtr& top() {
    if (stack_.empty()) fail("pickle stack underflow");
    return stack_.back();
  }

  void memo_put(uint64_t index) {
    if (index > 10000000) fail("memo index out of range");
    if (memo_.size() <= index) memo_.resize(index + 1);
    memo_[index] = top();
  }
  ValuePtr memo_get(uint64_t index) {
    if (index >= memo_.size() || !memo_[index]) fail("memo entry " + std::to_string(index) + " is missing");
    return memo_[index];
  }

  void adopt(Value& parent, const std::vector<ValuePtr>& children) const {
    for (const auto& child : children) {
      if (child->depth >= kMaxNesting) fail("nested more than " + std::to_string(kMaxNesting) + " levels deep");
      parent.depth = std::max(parent.depth, child->depth + 1);
    }
  }

  void tuple(std::vector<ValuePtr> items) {
    auto v = make(Value::Kind::Tuple);
    adopt(*v, items);
    v->items = std::move(items);
    push(v);
  }
  void append(const std::vector<ValuePtr>& items) {
    ValuePtr& list = top();
    if (list->kind != Value::Kind::List) fail("APPEND on a non-list");
    adopt(*list, items);
    list->items.insert(list->items.end(), items.begin(), items.end());
  }
  void setitems(const std::vector<ValuePtr>& kv) {
    ValuePtr& dict = top();
    if (dict->kind != Value::Kind::Dict || kv.size() % 2) fail("SETITEMS on a non-dict");
    adopt(*dict, kv);
    dict->items.insert(dict->items.end(), kv.begin(), kv.end());
  }

  int64_t as_int(const ValuePtr& v, const char* what) const {
    if (v->kind != Value::Kind::Int) fail(std::string(what) + " must be an integer");
    return v->i;
  }
  std::vector<int64_t> as_ints(const ValuePtr& v, const char* what) const {
    if (v->kind != Value::Kind::Tuple && v->kind != Value::Kind::List) fail(std::string(what) + " must be a tuple");
    std::vector<int64_t> out;
    for (const auto& item : v->items) out.push_back(as_int(item, what));
    return out;
  }

  void reduce() {
    const ValuePtr args = pop();
    const ValuePtr callable = pop();
    if (callable->kind != Value::Kind::Global || args->kind != Value::Kind::Tuple) fail("malformed REDUCE");
    const std::string& fn = callable->s;
    const auto& a = args->items;
    if (fn == "collections.OrderedDict") {
      push(make(Value::Kind::Dict));
    } else if (fn == "torch._utils._rebuild_tensor_v2" && a.size() >= 4) {
      push(rebuild_tensor(a[0], as_int(a[1], "storage offset"), as_ints(a[2], "size"), as_ints(a[3], "stride")));
    } else if (fn == "torch._utils._rebuild_parameter" && !a.empty() && a[0]->kind == Value::Kind::Tensor) {
      push(a[0]);
    } else if (fn == "torch.jit._pickle.restore_type_tag" && !a.empty()) {
      push(a[0]);
    } else {
      fail("unsupported object '" + fn + "' (only tensors in a dict are accepted)");
    }
  }

  static constexpr int64_t kMaxExtent = int64_t(1) << 40;

  ValuePtr rebuild_tensor(const ValuePtr& storage, int64_t offset, const std::vector<int64_t>& size,
                          const std::vector<int64_t>& stride) {
    if (storage->kind != Value::Kind::Tensor) fail("tensor without storage");
    if (size.size() != stride.size()) fail("size and stride differ in length");
    const int64_t numel = storage->tensor.numel();
    int64_t last = offset, count = 1;
    for (size_t d = 0; d < size.size(); ++d) {
      if (size[d] < 0 || stride[d] < 0 || size[d] > kMaxExtent || stride[d] > kMaxExtent) {
        fail("negative or huge size/stride");
      }
      // Checked arithmetic: an overflow would defeat the bounds check below.
      if (__builtin_mul_overflow(count, size[d], &count)) fail("tensor size overflows");
      int64_t reach = 0;
      if (size[d] > 0 &&
          (__builtin_mul_overflow(size[d] - 1, stride[d], &reach) || __builtin_add_overflow(last, reach, &last))) {
        fail("tensor extent overflows");
      }
    }
    if (offset < 0 || (count > 0 && last >= numel)) fail("tensor extends past its storage");
    auto v = make(Value::Kind::Tensor);
    v->tensor = count == 0 ? torch::empty(size, storage->tensor.options())
                           : storage->tensor.as_strided(size, stride, offset).clone();
    return v;
  }

  void persistent_load() {
    const ValuePtr pid = pop();
    const auto& t = pid->items;
    if (pid->kind != Value::Kind::Tuple || t.size() < 5 || t[0]->kind != Value::Kind::String || t[0]->s != "storage" ||
        t[1]->kind != Value::Kind::Global || t[2]->kind != Value::Kind::String) {
      fail("unsupported persistent id");
    }
    const auto dtype = storage_dtype(t[1]->s);
    if (!dtype) fail("unsupported storage type '" + t[1]->s + "'");
    const int64_t numel = as_int(t[4], "storage size");
    // Saved from a GPU ('cuda:0') or elsewhere: the bytes are the same, so they load onto the
    // CPU, as torch.load's map_location='cpu' does.
    if (t[3]->kind == Value::Kind::String && t[3]->s != "cpu") foreign_locations_.insert(t[3]->s);
    const std::string record = "data/" + t[2]->s;
    if (!zip_.hasRecord(record)) fail("missing record '" + record + "'");
    auto [ptr, nbytes] = zip_.getRecord(record);
    const size_t element = c10::elementSize(*dtype);
    if (numel < 0 || static_cast<uint64_t>(numel) > nbytes / element ||
        nbytes != static_cast<size_t>(numel) * element) {
      fail("record '" + record + "' has " + std::to_string(nbytes) + " bytes, expected " +
           std::to_string(numel * static_cast<int64_t>(element)));
    }
    auto v = make(Value::Kind::Tensor);
    v->tensor = torch::empty({numel}, torch::TensorOptions().dtype(*dtype));
    if (nbytes) std::memcpy(v->tensor.data_ptr(), ptr.get(), nbytes);
    push(v);
  }

 public:
  std::set<std::string> foreign_locations_;  // devices other than the CPU the tensors were saved on

 private:
  std::string name_;
  const std::vector<uint8_t>& data_;
  caffe2::serialize::PyTorchStreamReader& zip_;
  size_t pos_ = 0;
  std::vector<ValuePtr> stack_, memo_;
  std::vector<size_t> marks_;
};

// torch.save's format before PyTorch 1.6 (pickles and raw storages, no zip) opens with its
// magic number 0x1950a86a20f9469cfc6c pickled at protocol 2.
void refuse_legacy_format(const std::filesystem::path& file) {
  static const std::string kLegacyMagic("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 14);
  std::string head(kLegacyMagic.size(), '\0');
  std::ifstream in(file, std::ios::binary);
  if (in.read(head.data(), static_cast<std::streamsize>(head.size())) && head == kLegacyMagic) {
    throw file_error(file.string(),
                     "legacy torch.save format (before PyTorch 1.6), which convkit does not read; "
                     "re-save it in Python: torch.save(torch.load(f, map_location='cpu'), f)");
  }
}

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> read_torch_state_dict(const std::filesystem::path& file) {
  const std::string name = file.string();
  require_regular_file(file);
  refuse_legacy_format(file);
  check_record_sizes(read_zip_directory(file), name);
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> zip;
  std::vector<uint8_t> pickle;
  try {
    zip = std::make_unique<caffe2::serialize::PyTorchStreamReader>(name);
    if (!zip->hasRecord("data.pkl")) throw file_error(name, "not a torch.save archive (no data.pkl)");
    auto [ptr, size] = zip->getRecord("data.pkl");
    const auto* p = static_cast<const uint8_t*>(ptr.get());
    pickle.assign(p, p + size);
  } catch (const c10::Error& e) {
    throw file_error(name, "not a readable PyTorch checkpoint (" + first_line(e.what_without_backtrace()) + ")");
  }

  ValuePtr root;
  Unpickler unpickler(name, pickle, *zip);
  try {
    root = unpickler.run();
  } catch (const c10::Error& e) {
    throw file_error(name, "corrupt checkpoint (" + first_line(e.what_without_backtrace()) + ")");
  }
  if (!unpickler.foreign_locations_.empty()) {
    std::cerr << "convkit: note: " << name << ": tensors saved on "
              << join({unpickler.foreign_locations_.begin(), unpickler.foreign_locations_.end()})
              << " were loaded onto the CPU (as torch.load with map_location='cpu')\n";
  }
  if (root->kind != Value::Kind::Dict)
    throw file_error(name, "checkpoint does not hold a state_dict (a dict of tensors)");
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (size_t k = 0; k + 1 < root->items.size(); k += 2) {
    const auto& key = root->items[k];
    const auto& value = root->items[k + 1];
    if (key->kind != Value::Kind::String || value->kind != Value::Kind::Tensor) {
      throw file_error(name, "state_dict entries must map names to tensors");
    }
    out.emplace_back(key->s, value->tensor);
  }
  return out;
}

}  // namespace convkit::checkpoint
