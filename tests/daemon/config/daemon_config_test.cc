// The daemon's settings from the command line and the TOML config file:
// defaults, file values, flag precedence, and the refusal of every kind of
// wrong key or value with file, line and reason.
#include "daemon/config/daemon_config.h"

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/temp_dir.h"

namespace vfiomig {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Outcome {
  LoadedConfig loaded;
  std::string out;
  std::string err;
};

Outcome Load(std::vector<std::string> args) {
  args.insert(args.begin(), "vfio-migd");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  std::ostringstream out;
  std::ostringstream err;
  Outcome run;
  run.loaded =
      LoadDaemonConfig(static_cast<int>(argv.size()), argv.data(), out, err);
  run.out = out.str();
  run.err = err.str();
  return run;
}

class DaemonConfigTest : public ::testing::Test {
 protected:
  // Writes `toml` and loads it with `flags` after --config.
  Outcome LoadFile(const std::string& toml,
                   std::vector<std::string> flags = {}) {
    path_ = dir_.WriteFile("vfio-migd.toml", toml);
    flags.insert(flags.begin(), {"--config", path_});
    return Load(flags);
  }
  testing::TempDir dir_;
  std::string path_;
};

TEST_F(DaemonConfigTest, EmptyFileGivesTheDefaults) {
  Outcome run = LoadFile("# nothing set\n");
  ASSERT_FALSE(run.loaded.exit_code) << run.err;
  const DaemonConfig& c = run.loaded.config;
  EXPECT_EQ(c.config_file, path_);
  EXPECT_EQ(c.listen, std::vector<std::string>{kDefaultListen});
  EXPECT_EQ(c.backend, "vfio");
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.policy, "sla");
  EXPECT_EQ(c.drain_timeout_ms, 5000u);
  EXPECT_EQ(c.arc_timeout_ms, 10000u);
  EXPECT_EQ(c.precopy_threshold_bytes, uint64_t{4} << 20);
  EXPECT_EQ(c.precopy_max_rounds, 8u);
  EXPECT_EQ(c.switchover, "none");
  EXPECT_EQ(c.peer_timeout_ms, 10000u);
  EXPECT_TRUE(c.driver_deadlines.empty());
}

TEST_F(DaemonConfigTest, FileSetsEveryKind) {
  const std::string sim = dir_.WriteFile("sim.json", "{}");
  Outcome run = LoadFile(R"(
[server]
listen = ["unix:/tmp/a.sock", "127.0.0.1:7070"]

[log]
level = "debug"

[backend]
name = "sim"
sim_config = ")" + sim + R"("
devices = ["gpu0", "nic0"]

[migration]
policy = "mandatory"
drain_timeout_ms = 60000
arc_timeout_ms = 20000
precopy_threshold_bytes = 1048576
precopy_max_rounds = 3
switchover = "none"
peer_timeout_ms = 2000

[drivers.mlx5_vfio_pci]
drain_timeout_ms = 90000

[drivers."nvgrace-gpu-vfio-pci"]
drain_timeout_ms = 120000
arc_timeout_ms = 30000
)");
  ASSERT_FALSE(run.loaded.exit_code) << run.err;
  const DaemonConfig& c = run.loaded.config;
  EXPECT_EQ(c.listen,
            (std::vector<std::string>{"unix:/tmp/a.sock", "127.0.0.1:7070"}));
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.backend, "sim");
  EXPECT_EQ(c.sim_config, sim);
  EXPECT_EQ(c.devices, (std::vector<std::string>{"gpu0", "nic0"}));
  EXPECT_EQ(c.policy, "mandatory");
  EXPECT_EQ(c.drain_timeout_ms, 60000u);
  EXPECT_EQ(c.arc_timeout_ms, 20000u);
  EXPECT_EQ(c.precopy_threshold_bytes, 1048576u);
  EXPECT_EQ(c.precopy_max_rounds, 3u);
  EXPECT_EQ(c.peer_timeout_ms, 2000u);
  ASSERT_EQ(c.driver_deadlines.size(), 2u);
  const DriverDeadlines& mlx = c.driver_deadlines.at("mlx5_vfio_pci");
  EXPECT_EQ(mlx.drain_timeout_ms, 90000u);
  EXPECT_FALSE(mlx.arc_timeout_ms);
  const DriverDeadlines& gpu = c.driver_deadlines.at("nvgrace-gpu-vfio-pci");
  EXPECT_EQ(gpu.drain_timeout_ms, 120000u);
  EXPECT_EQ(gpu.arc_timeout_ms, 30000u);
}

TEST_F(DaemonConfigTest, FlagsOverrideTheFile) {
  Outcome run = LoadFile(R"(
[server]
listen = ["unix:/tmp/file.sock"]
[migration]
drain_timeout_ms = 60000
arc_timeout_ms = 20000
)",
                         {"--drain-timeout-ms", "7", "--listen", "unix:/tmp/a",
                          "--listen", "unix:/tmp/b"});
  ASSERT_FALSE(run.loaded.exit_code) << run.err;
  const DaemonConfig& c = run.loaded.config;
  EXPECT_EQ(c.drain_timeout_ms, 7u);
  EXPECT_EQ(c.arc_timeout_ms, 20000u);  // only in the file
  // A list flag replaces the file's list, it does not add to it.
  EXPECT_EQ(c.listen, (std::vector<std::string>{"unix:/tmp/a", "unix:/tmp/b"}));
}

TEST_F(DaemonConfigTest, EmptyArrayEmptiesTheList) {
  Outcome run = LoadFile("[backend]\ndevices = []\n", {"--devices", "gpu0"});
  ASSERT_FALSE(run.loaded.exit_code) << run.err;
  EXPECT_EQ(run.loaded.config.devices, std::vector<std::string>{"gpu0"});
  run = LoadFile("[server]\nlisten = []\n");
  ASSERT_EQ(run.loaded.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("needs at least one target"));
}

struct BadFile {
  std::string toml;
  // What the message must contain after "vfio-migd: FILE:".
  std::string where_and_why;
};

TEST_F(DaemonConfigTest, RefusesWithFileLineAndReason) {
  const std::vector<BadFile> cases = {
      // Syntax.
      {"[migration\n", "1:11: "},
      {"listen = \n", "1:10: "},
      // Unknown keys and tables, pointing at the key.
      {"[migration]\ndrian_timeout_ms = 5\n",
       "2:1: migration.drian_timeout_ms: unknown key (known here: policy, "
       "drain_timeout_ms"},
      {"policy = \"sla\"\n",
       "1:1: policy: unknown key (known here: [server], [tls], [journal], "
       "[log], [metrics], [backend], [migration], [drivers])"},
      {"\n[foo]\nx = 1\n", "2:2: foo: unknown table"},
      {"[migration.x]\ny = 1\n", "1:12: migration.x: unknown table"},
      // Wrong TOML types, pointing at the value.
      {"[migration]\ndrain_timeout_ms = \"5000\"\n",
       "2:20: migration.drain_timeout_ms: must be an integer, not a string"},
      {"[server]\nlisten = \"unix:/x\"\n",
       "2:10: server.listen: must be an array of strings, not a string"},
      {"[server]\nlisten = [\"unix:/x\", 3]\n",
       "2:10: server.listen: must be an array of strings"},
      {"[log]\nlevel = 1.5\n", "2:9: log.level: must be a string, not a float"},
      {"log = 3\n", "1:7: log: must be a table ([log]), not an integer"},
      // Values the flag's own checks refuse.
      {"[migration]\ndrain_timeout_ms = 0\n",
       "2:20: migration.drain_timeout_ms: Value 0 not in range 1 to 86400000"},
      {"[migration]\narc_timeout_ms = -5\n",
       "2:18: migration.arc_timeout_ms: "},
      {"[migration]\npolicy = \"maybe\"\n",
       "2:10: migration.policy: maybe not in {sla,mandatory}"},
      {"[log]\nlevel = \"loud\"\n", "2:9: log.level: loud not in"},
      {"[log]\ntarget = \"syslog\"\n",
       "2:10: log.target: syslog not in {auto,journal,stderr}"},
      {"[metrics]\nlisten = \"9474\"\n",
       "2:10: metrics.listen: bad metrics address '9474': no port"},
      {"[backend]\nname = \"xen\"\n", "2:8: backend.name: xen not in"},
      {"[backend]\nsim_config = \"/nonexistent/sim.json\"\n",
       "2:14: backend.sim_config: File does not exist: /nonexistent/sim.json"},
      {"[server]\nlisten = [\"unix:/ok\", \"host:99999\"]\n",
       "2:10: server.listen: bad listen target 'host:99999'"},
      {"[backend]\ndevices = [\"ok\", \"bad id\"]\n",
       "2:11: backend.devices: "},
      {"[migration]\nswitchover = \"qmpx\"\n",
       "2:14: migration.switchover: qmpx not in"},
      // Driver tables.
      {"drivers = 3\n",
       "1:11: drivers: must be a table of driver tables ([drivers.DRIVER])"},
      {"[drivers]\nmlx = 3\n", "2:1: drivers.mlx: must be a table"},
      {"[drivers.mlx]\n", "1:10: drivers.mlx: sets nothing"},
      {"[drivers.mlx]\ndrain_ms = 5\n",
       "2:1: drivers.mlx.drain_ms: unknown key (known here: drain_timeout_ms, "
       "arc_timeout_ms)"},
      {"[drivers.mlx]\ndrain_timeout_ms = 0\n",
       "2:20: drivers.mlx.drain_timeout_ms: Value 0 not in range 1 to "
       "86400000"},
      {"[drivers.mlx]\narc_timeout_ms = \"1\"\n",
       "2:18: drivers.mlx.arc_timeout_ms: must be an integer"},
      // Settings that depend on each other.
      {"[backend]\nname = \"sim\"\n", "--backend sim needs --sim-config"},
  };
  for (const BadFile& bad : cases) {
    SCOPED_TRACE(bad.toml);
    Outcome run = LoadFile(bad.toml);
    EXPECT_EQ(run.loaded.exit_code, 2);
    if (bad.where_and_why.starts_with("--")) {
      EXPECT_THAT(run.err, HasSubstr(bad.where_and_why));
    } else {
      EXPECT_THAT(run.err,
                  StartsWith("vfio-migd: " + path_ + ":" + bad.where_and_why));
    }
    // One line: the operator sees the whole reason in the journal.
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  }
}

TEST_F(DaemonConfigTest, AFlagDoesNotHideABadKey) {
  // The command line wins, but a wrong file is still wrong.
  Outcome run = LoadFile("[migration]\ndrain_timeout_ms = \"x\"\n",
                         {"--drain-timeout-ms", "5"});
  EXPECT_EQ(run.loaded.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("must be an integer"));
}

TEST(DaemonConfigLoad, MissingExplicitFileIsRefused) {
  Outcome run = Load({"--config", "/nonexistent/vfio-migd.toml"});
  EXPECT_EQ(run.loaded.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("/nonexistent/vfio-migd.toml"));
}

TEST(DaemonConfigLoad, BadFlagsAndHelpExitAtOnce) {
  Outcome run = Load({"--drain-timeout-ms", "0"});
  ASSERT_TRUE(run.loaded.exit_code);
  EXPECT_NE(*run.loaded.exit_code, 0);
  EXPECT_THAT(run.err, HasSubstr("--drain-timeout-ms"));

  run = Load({"--help"});
  EXPECT_EQ(run.loaded.exit_code, 0);
  EXPECT_THAT(run.out, HasSubstr("[config: migration.drain_timeout_ms]"));

  run = Load({"--version"});
  EXPECT_EQ(run.loaded.exit_code, 0);
  EXPECT_THAT(run.out, StartsWith("vfio-migd "));
}

// The sample config lists every key (commented out, with its default), so
// that an operator finds every setting there; and it loads as it is.
TEST(DaemonConfigSample, ListsEveryKeyAndLoads) {
  const std::string sample = VFIOMIG_SAMPLE_CONFIG;
  std::ifstream in(sample);
  ASSERT_TRUE(in) << sample;
  std::stringstream text;
  text << in.rdbuf();
  // Uncommented, it must load too: the example values are valid.
  std::string uncommented;
  std::set<std::string> documented;
  std::string table;
  std::istringstream lines(text.str());
  for (std::string line; std::getline(lines, line);) {
    // "#key = value" and "#[table]" are settings; "# " starts prose.
    const bool setting =
        line.starts_with("#") && !line.starts_with("# ") && line != "#";
    // Keys whose example is a file that must exist are left out.
    const bool example_file =
        line.starts_with("#sim_config") || line.starts_with("#ca = ") ||
        line.starts_with("#cert = ") || line.starts_with("#key = ");
    if (setting && !example_file) {
      uncommented += line.substr(1) + "\n";
    }
    if (line.starts_with("#[")) {
      table = line.substr(line.find('[') + 1);
      table = table.substr(0, table.find(']'));
      if (table.starts_with("drivers.")) table = "drivers.NAME";
    } else if (setting && line.find(" = ") != std::string::npos) {
      documented.insert(table + "." + line.substr(1, line.find(" = ") - 1));
    }
  }
  for (const auto& [key, kind] : DaemonConfigKeys()) {
    EXPECT_TRUE(documented.count(key)) << key << " missing from " << sample;
  }

  Outcome run = Load({"--config", sample});
  EXPECT_FALSE(run.loaded.exit_code) << run.err;

  testing::TempDir dir;
  const std::string path = dir.WriteFile("uncommented.toml", uncommented);
  run = Load({"--config", path});
  EXPECT_FALSE(run.loaded.exit_code) << run.err << uncommented;
}

}  // namespace
}  // namespace vfiomig
