#include "checkpoint/torch_pickle.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "checkpoint/zip_archive.h"
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
  bool contained = false;       // is an item of another value
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

// Where a persistent id's storage comes from: a record of the zip archive, or (legacy format) a
// block after the pickles. Called with the storage's key, element type and element count.
using StorageSource = std::function<torch::Tensor(const std::string& key, torch::ScalarType dtype, int64_t numel)>;

// One pickle of `data`, from byte `start` to its STOP (position() is then just past it).
class Unpickler {
 public:
  Unpickler(const std::string& name, const std::vector<uint8_t>& data, size_t start, StorageSource storages)
      : name_(name), data_(data), storages_(std::move(storages)), pos_(start) {}

  size_t position() const { return pos_; }

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

  // Python's pickler completes a list or dict before it puts it inside another, so a value
  // changed after that (or put inside itself) can only be building a reference cycle, which
  // shared pointers would never free.
  void adopt(Value& parent, const std::vector<ValuePtr>& children) const {
    if (parent.contained) fail("a value is changed after being put inside another (a reference cycle)");
    for (const auto& child : children) {
      if (child.get() == &parent) fail("a value is put inside itself (a reference cycle)");
      child->contained = true;
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
    // A view: a legacy file's storages are filled only after the pickle (the reader clones at the end).
    auto v = make(Value::Kind::Tensor);
    v->tensor =
        count == 0 ? torch::empty(size, storage->tensor.options()) : storage->tensor.as_strided(size, stride, offset);
    return v;
  }

  void persistent_load() {
    const ValuePtr pid = pop();
    const auto& t = pid->items;
    if (pid->kind != Value::Kind::Tuple || t.size() < 5 || t[0]->kind != Value::Kind::String || t[0]->s != "storage" ||
        t[1]->kind != Value::Kind::Global || t[2]->kind != Value::Kind::String) {
      fail("unsupported persistent id");
    }
    // The legacy format's sixth item describes a view into another storage (PyTorch before 0.4).
    if (t.size() > 5 && t[5]->kind != Value::Kind::None) fail("storage views are not supported");
    const auto dtype = storage_dtype(t[1]->s);
    if (!dtype) fail("unsupported storage type '" + t[1]->s + "'");
    const int64_t numel = as_int(t[4], "storage size");
    if (numel < 0) fail("negative storage size");
    // Saved from a GPU ('cuda:0') or elsewhere: the bytes are the same, so they load onto the
    // CPU, as torch.load's map_location='cpu' does.
    if (t[3]->kind == Value::Kind::String && t[3]->s != "cpu") foreign_locations_.insert(t[3]->s);
    auto v = make(Value::Kind::Tensor);
    v->tensor = storages_(t[2]->s, *dtype, numel);
    push(v);
  }

 public:
  std::set<std::string> foreign_locations_;  // devices other than the CPU the tensors were saved on

 private:
  std::string name_;
  const std::vector<uint8_t>& data_;
  StorageSource storages_;
  size_t pos_;
  std::vector<ValuePtr> stack_, memo_;
  std::vector<size_t> marks_;
};

// torch.save's format before PyTorch 1.6 (and with _use_new_zipfile_serialization=False): five
// pickles in a row (magic number, protocol version, system info, the object, its storage keys),
// then each storage as an 8-byte element count and its raw little-endian bytes.
const std::string kLegacyMagic("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 14);
constexpr int64_t kLegacyProtocol = 1001;

bool is_legacy_format(const std::filesystem::path& file) {
  std::string head(kLegacyMagic.size(), '\0');
  std::ifstream in(file, std::ios::binary);
  return in.read(head.data(), static_cast<std::streamsize>(head.size())) && head == kLegacyMagic;
}

const Value* dict_value(const Value& dict, const std::string& key) {
  for (size_t k = 0; k + 1 < dict.items.size(); k += 2)
    if (dict.items[k]->kind == Value::Kind::String && dict.items[k]->s == key) return dict.items[k + 1].get();
  return nullptr;
}

struct LegacyStorage {
  torch::Tensor tensor;
  bool filled = false;
};

class LegacyReader {
 public:
  explicit LegacyReader(const std::filesystem::path& file) : name_(file.string()), bytes_(read_file_bytes(file)) {}

  ValuePtr read(std::set<std::string>& foreign_locations) {
    pos_ = kLegacyMagic.size();
    if (bytes_.size() <= pos_ || bytes_[pos_++] != '.') fail("truncated header");
    const ValuePtr protocol = pickle();
    if (protocol->kind != Value::Kind::Int || protocol->i != kLegacyProtocol) fail("unknown protocol version");
    const ValuePtr info = pickle();
    const Value* little_endian = info->kind == Value::Kind::Dict ? dict_value(*info, "little_endian") : nullptr;
    if (!little_endian || little_endian->kind != Value::Kind::Bool) fail("system information missing");
    if (!little_endian->i) fail("saved on a big-endian machine");
    const ValuePtr root = pickle(&foreign_locations);
    const ValuePtr keys = pickle();
    if (keys->kind != Value::Kind::List) fail("storage keys missing");
    for (const ValuePtr& key : keys->items) {
      if (key->kind != Value::Kind::String) fail("storage keys must be strings");
      fill(key->s);
    }
    for (const auto& [key, storage] : storages_)
      if (!storage.filled) fail("storage '" + key + "' has no data");
    if (pos_ != bytes_.size()) fail(std::to_string(bytes_.size() - pos_) + " bytes after the last storage");
    return root;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw file_error(name_, "invalid legacy torch.save file: " + what);
  }

  ValuePtr pickle(std::set<std::string>* foreign_locations = nullptr) {
    Unpickler unpickler(name_, bytes_, pos_, [this](const std::string& key, torch::ScalarType dtype, int64_t numel) {
      return storage(key, dtype, numel);
    });
    ValuePtr v = unpickler.run();
    pos_ = unpickler.position();
    if (foreign_locations)
      foreign_locations->insert(unpickler.foreign_locations_.begin(), unpickler.foreign_locations_.end());
    return v;
  }

  // Allocated when the pickle first names it, filled when its bytes come. Together they must fit
  // in what is left of the file, so the storages cost no more memory than the file holds.
  torch::Tensor storage(const std::string& key, torch::ScalarType dtype, int64_t numel) {
    auto it = storages_.find(key);
    if (it != storages_.end()) {
      if (it->second.tensor.scalar_type() != dtype || it->second.tensor.numel() != numel)
        fail("storage '" + key + "' is declared twice, differently");
      return it->second.tensor;
    }
    const uint64_t room = bytes_.size() - pos_ - std::min<uint64_t>(declared_bytes_, bytes_.size() - pos_);
    if (static_cast<uint64_t>(numel) > room / c10::elementSize(dtype))
      fail("storage '" + key + "' does not fit in the file");
    declared_bytes_ += static_cast<uint64_t>(numel) * c10::elementSize(dtype);
    return storages_[key].tensor = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
  }

  void fill(const std::string& key) {
    auto it = storages_.find(key);
    if (it == storages_.end()) fail("storage '" + key + "' is listed but not used");
    LegacyStorage& storage = it->second;
    if (storage.filled) fail("storage '" + key + "' is listed twice");
    uint64_t count = 0;
    if (bytes_.size() - pos_ < 8) fail("file ends before storage '" + key + "'");
    for (int k = 7; k >= 0; --k) count = (count << 8) | bytes_[pos_ + k];
    pos_ += 8;
    if (count != static_cast<uint64_t>(storage.tensor.numel()))
      fail("storage '" + key + "' holds " + std::to_string(count) + " elements, expected " +
           std::to_string(storage.tensor.numel()));
    const size_t nbytes = storage.tensor.nbytes();
    if (bytes_.size() - pos_ < nbytes) fail("file ends inside storage '" + key + "'");
    if (nbytes) std::memcpy(storage.tensor.data_ptr(), bytes_.data() + pos_, nbytes);
    pos_ += nbytes;
    storage.filled = true;
  }

  std::string name_;
  std::vector<uint8_t> bytes_;
  size_t pos_ = 0;
  uint64_t declared_bytes_ = 0;
  std::map<std::string, LegacyStorage> storages_;
};

// What PyTorch's reader takes for a torch.save archive: every record in one folder (named
// after the file by torch.save, or anything), a format version it knows, and data.pkl.
constexpr uint64_t kMinFormatVersion = 1, kMaxFormatVersion = 10;

std::string archive_folder(const ZipArchive& zip, const std::string& name) {
  const std::string& first = zip.first_name();
  const size_t slash = first.find('/');
  if (slash == std::string::npos)
    throw file_error(name, "not a torch.save archive (record '" + first + "' is not in a folder)");
  return first.substr(0, slash + 1);
}

void check_format_version(const ZipArchive& zip, const std::string& folder, const std::string& name) {
  const std::string record = zip.has(folder + ".data/version") ? folder + ".data/version" : folder + "version";
  if (!zip.has(record)) throw file_error(name, "not a torch.save archive (no version record)");
  const std::vector<uint8_t> text = zip.read(record);
  uint64_t version = 0;
  size_t digits = 0;
  for (; digits < text.size() && digits < 4 && text[digits] >= '0' && text[digits] <= '9'; ++digits)
    version = version * 10 + (text[digits] - '0');
  const bool only_space_after =
      std::all_of(text.begin() + digits, text.end(), [](uint8_t c) { return c == '\n' || c == '\r' || c == ' '; });
  if (digits == 0 || !only_space_after || version < kMinFormatVersion || version > kMaxFormatVersion)
    throw file_error(name, "unsupported torch.save format version (supported: " + std::to_string(kMinFormatVersion) +
                               " to " + std::to_string(kMaxFormatVersion) + ")");
}

// The zip format (PyTorch 1.6 on): data.pkl, and each storage a record data/<key>.
ValuePtr read_zip_format(const std::filesystem::path& file, std::set<std::string>& foreign_locations) {
  const std::string name = file.string();
  const ZipArchive zip(file);
  const std::string folder = archive_folder(zip, name);
  check_format_version(zip, folder, name);
  if (!zip.has(folder + "data.pkl")) throw file_error(name, "not a torch.save archive (no data.pkl)");
  const std::vector<uint8_t> pickle = zip.read(folder + "data.pkl");
  const auto from_record = [&](const std::string& key, torch::ScalarType dtype, int64_t numel) {
    const std::string record = "data/" + key;
    if (!zip.has(folder + record)) throw file_error(name, "invalid state_dict: missing record '" + record + "'");
    const size_t element = c10::elementSize(dtype);
    const uint64_t nbytes = zip.entries().at(folder + record).uncompressed;
    if (static_cast<uint64_t>(numel) > nbytes / element || nbytes != static_cast<uint64_t>(numel) * element) {
      throw file_error(name, "invalid state_dict: record '" + record + "' has " + std::to_string(nbytes) +
                                 " bytes, expected " + std::to_string(numel * static_cast<int64_t>(element)));
    }
    const std::vector<uint8_t> bytes = zip.read(folder + record);
    torch::Tensor storage = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
    if (nbytes) std::memcpy(storage.data_ptr(), bytes.data(), nbytes);
    return storage;
  };
  Unpickler unpickler(name, pickle, 0, from_record);
  ValuePtr root = unpickler.run();
  foreign_locations = unpickler.foreign_locations_;
  return root;
}

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> read_torch_state_dict(const std::filesystem::path& file) {
  const std::string name = file.string();
  require_regular_file(file);
  ValuePtr root;
  std::set<std::string> foreign_locations;
  try {
    root =
        is_legacy_format(file) ? LegacyReader(file).read(foreign_locations) : read_zip_format(file, foreign_locations);
  } catch (const c10::Error& e) {
    throw file_error(name, "corrupt checkpoint (" + first_line(e.what_without_backtrace()) + ")");
  }
  if (!foreign_locations.empty()) {
    std::cerr << "convkit: note: " << name << ": tensors saved on "
              << join({foreign_locations.begin(), foreign_locations.end()})
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
    out.emplace_back(key->s, value->tensor.clone(at::MemoryFormat::Contiguous));  // its own compact memory
  }
  return out;
}

}  // namespace convkit::checkpoint
