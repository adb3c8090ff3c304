#include "daemon/precheck.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace storevisor::daemon {
namespace {

// A host with the images and files it is told of; everything else is missing.
class FakeHost : public PrecheckHost {
 public:
  std::set<std::string> images;
  std::set<std::string> files;
  std::map<std::string, std::string> unreadable;  // path -> strerror text
  std::optional<uint64_t> available = uint64_t{8} << 30;

  Status ImagePresent(const std::string& ref) const override {
    if (images.count(ref) != 0) return Ok();
    return Error(ErrorCode::kNotFound, "image " + ref + " is not in the image store /s");
  }
  Status Readable(const std::string& path) const override {
    auto it = unreadable.find(path);
    if (it != unreadable.end())
      return Error(ErrorCode::kPermissionDenied, path + ": " + it->second);
    if (files.count(path) != 0) return Ok();
    return Error(ErrorCode::kNotFound, path + ": No such file or directory");
  }
  std::optional<uint64_t> AvailableMemory() const override { return available; }
};

// Line numbers: inventory at 6, pos at 9.
constexpr const char* kProfile =
    "apiVersion: storevisor.io/v1\n"                                      // 1
    "kind: StoreProfile\n"                                                // 2
    "metadata: {name: t}\n"                                               // 3
    "spec:\n"                                                             // 4
    "  workloads:\n"                                                      // 5
    "    - name: inventory\n"                                             // 6
    "      kind: container\n"                                             // 7
    "      image: storevisor/inventory:2\n"                               // 8
    "    - name: pos\n"                                                   // 9
    "      kind: microvm\n"                                               // 10
    "      kernel: /guest/vmlinuz\n"                                      // 11
    "      initrd: /guest/initrd.img\n"                                   // 12
    "      memory: 512Mi\n"                                               // 13
    "      disks: [{path: /guest/data.img}, {path: /guest/logs.img}]\n";  // 14

Profile Parse(const std::string& text = kProfile) {
  auto p = ParseProfile(text, "store.yaml");
  EXPECT_TRUE(p) << p.error().message();
  return p ? *p : Profile{};
}

FakeHost Everything() {
  FakeHost h;
  h.images = {"storevisor/inventory:2"};
  h.files = {"/guest/vmlinuz", "/guest/initrd.img", "/guest/data.img", "/guest/logs.img"};
  return h;
}

std::string Message(const Status& st) { return st ? "ok" : st.error().message(); }

TEST(PrecheckTest, EverythingPresentPasses) {
  EXPECT_EQ(Message(CheckProfileNeeds(Parse(), Everything())), "ok");
}

TEST(PrecheckTest, MissingImageNamesFileLineAndField) {
  FakeHost h = Everything();
  h.images.clear();
  Status st = CheckProfileNeeds(Parse(), h);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(st.error().message(),
            "store.yaml:6: spec.workloads[0].image: image storevisor/inventory:2 is not in the "
            "image store /s");
}

TEST(PrecheckTest, UnreadableKernel) {
  FakeHost h = Everything();
  h.unreadable["/guest/vmlinuz"] = "Permission denied";
  EXPECT_EQ(Message(CheckProfileNeeds(Parse(), h)),
            "store.yaml:9: spec.workloads[1].kernel: /guest/vmlinuz: Permission denied");
}

TEST(PrecheckTest, MissingInitrd) {
  FakeHost h = Everything();
  h.files.erase("/guest/initrd.img");
  EXPECT_EQ(Message(CheckProfileNeeds(Parse(), h)),
            "store.yaml:9: spec.workloads[1].initrd: /guest/initrd.img: No such file or directory");
}

TEST(PrecheckTest, MissingDiskNamesItsIndex) {
  FakeHost h = Everything();
  h.files.erase("/guest/logs.img");
  EXPECT_EQ(Message(CheckProfileNeeds(Parse(), h)),
            "store.yaml:9: spec.workloads[1].disks[1].path: /guest/logs.img: No such file or "
            "directory");
}

TEST(PrecheckTest, ReportsEveryFailureAtOnce) {
  FakeHost h;  // nothing at all
  Status st = CheckProfileNeeds(Parse(), h);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(st.error().message(),
            "store.yaml:6: spec.workloads[0].image: image storevisor/inventory:2 is not in the "
            "image store /s\n"
            "store.yaml:9: spec.workloads[1].kernel: /guest/vmlinuz: No such file or directory\n"
            "store.yaml:9: spec.workloads[1].initrd: /guest/initrd.img: No such file or directory\n"
            "store.yaml:9: spec.workloads[1].disks[0].path: /guest/data.img: No such file or "
            "directory\n"
            "store.yaml:9: spec.workloads[1].disks[1].path: /guest/logs.img: No such file or "
            "directory");
}

TEST(PrecheckTest, ARootfsContainerNeedsNoImage) {
  const std::string text =
      "apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: t}\nspec:\n"
      "  workloads:\n    - {name: a, kind: container, rootfs: /later, command: [/bin/true]}\n";
  EXPECT_EQ(Message(CheckProfileNeeds(Parse(text), FakeHost{})), "ok");
}

constexpr uint64_t kMi = uint64_t{1} << 20;

TEST(PrecheckMemoryTest, CountsWhatTheReplacedInstancesFree) {
  const Profile p = Parse();  // pos asks for 512 MiB
  FakeHost h = Everything();
  h.available = 300 * kMi;
  // pos is new: 512 MiB to start, 300 available.
  Status st = CheckMemoryForApply(p, {}, h);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(st.error().message(),
            "store.yaml: the instances this apply starts ask for 512 MiB of memory, more than "
            "the 300 MiB there is (300 MiB available now + 0 MiB the instances it stops free, x "
            "spec.limits.memoryOvercommit 1.00)");
  // pos runs from another spec with 256 MiB: replacing it frees them (300 + 256 >= 512).
  EXPECT_EQ(Message(CheckMemoryForApply(p, {{"pos", "old-hash", 256 * kMi}}, h)), "ok");
  // The same instance unchanged starts nothing.
  const Workload* pos = p.Find("pos");
  h.available = 0;
  EXPECT_EQ(Message(CheckMemoryForApply(p, {{"pos", RuntimeHash(*pos), 512 * kMi}}, h)), "ok");
  // A workload that leaves the profile frees its memory too.
  EXPECT_EQ(Message(CheckMemoryForApply(p, {{"gone", "h", 600 * kMi}}, h)), "ok");
  // Unknown available memory: not checked.
  h.available.reset();
  EXPECT_EQ(Message(CheckMemoryForApply(p, {}, h)), "ok");
}

TEST(PrecheckMemoryTest, AManualWorkloadKeepsItsInstance) {
  std::string text = kProfile;
  text += "      update: manual\n";
  const Profile p = Parse(text);
  FakeHost h = Everything();
  h.available = 0;
  // Another spec, but update: manual: nothing starts, nothing is freed.
  EXPECT_EQ(Message(CheckMemoryForApply(p, {{"pos", "old-hash", 256 * kMi}}, h)), "ok");
}

TEST(ImagesInUseTest, ProfilesAndInstancesByImage) {
  const std::string text =
      "apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: t}\nspec:\n"
      "  workloads:\n"
      "    - {name: b, kind: container, image: busybox}\n"
      "    - {name: a, kind: container, image: 'busybox:latest'}\n"
      "    - {name: inv, kind: container, image: storevisor/inventory:2}\n"
      "    - {name: r, kind: container, rootfs: /r, command: [/bin/true]}\n";
  const Profile p = Parse(text);
  Workload manual;  // an update: manual instance still on the earlier image
  manual.name = "inv";
  manual.image = "storevisor/inventory:1";
  auto uses = ImagesInUse({&p, nullptr}, {&manual});
  ASSERT_EQ(uses.size(), 3u);
  EXPECT_EQ(uses[0].image, "busybox:latest");
  EXPECT_EQ(uses[0].workloads, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(uses[1].image, "storevisor/inventory:1");
  EXPECT_EQ(uses[1].workloads, (std::vector<std::string>{"inv"}));
  EXPECT_EQ(uses[2].image, "storevisor/inventory:2");
  EXPECT_TRUE(ImagesInUse({}, {}).empty());
}

}  // namespace
}  // namespace storevisor::daemon
