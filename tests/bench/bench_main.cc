// vfiomig_bench: the machine-level measurements of the benchmark suite
// (tests/bench/run.sh drives it, together with real daemons). Each
// subcommand prints one JSON object on stdout:
//
//   vfiomig_bench tcp --bytes N
//   vfiomig_bench baseline --config SRC.json --dest-config DST.json [--sealed]
//   vfiomig_bench sim-source --config SRC.json   (GiB per CPU-second)
//   vfiomig_bench sim-sink --config SRC.json     (GiB per CPU-second)
//   vfiomig_bench plan --devices 256 --iterations 200
//
// Not a test: the numbers depend on the machine and on what else runs.
#include <cstdint>
#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"
#include "tests/bench/device_bench.h"
#include "tests/bench/transport_bench.h"

namespace {

using vfiomig::bench::GiBps;

void Print(const nlohmann::json& j) { std::printf("%s\n", j.dump().c_str()); }

nlohmann::json Transport(const vfiomig::bench::TransportResult& r,
                         const char* key) {
  return {{"bytes", r.bytes},
          {"seconds", r.seconds},
          {"sender_cpu_seconds", r.sender_cpu_seconds},
          {"receiver_cpu_seconds", r.receiver_cpu_seconds},
          {key, r.gib_s()}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("vfiomig_bench: transport, sim and planner measurements");
  app.require_subcommand(1);

  uint64_t tcp_bytes = uint64_t{4} << 30;
  CLI::App* tcp = app.add_subcommand("tcp", "bare loopback TCP, two processes");
  tcp->add_option("--bytes", tcp_bytes, "bytes to send")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));

  std::string config, dest_config;
  CLI::App* baseline = app.add_subcommand(
      "baseline", "sim source devices -> one TCP connection -> sim sinks");
  baseline->add_option("--config", config, "source sim config")->required();
  baseline->add_option("--dest-config", dest_config, "sink sim config")
      ->required();
  bool sealed = false;
  baseline->add_flag("--sealed", sealed,
                     "send vfio-migd's checksummed data frames instead of "
                     "length-prefixed chunks");

  CLI::App* source = app.add_subcommand("sim-source", "sim save reads only");
  source->add_option("--config", config, "sim config")->required();
  CLI::App* sink = app.add_subcommand("sim-sink", "sim resume writes only");
  sink->add_option("--config", config, "sim config")->required();

  int devices = 256, iterations = 200;
  CLI::App* plan = app.add_subcommand("plan", "group planner time");
  plan->add_option("--devices", devices)->check(CLI::Range(1, 4096));
  plan->add_option("--iterations", iterations)->check(CLI::Range(1, 100000));

  vfiomig::bench::Pinning pinning;
  app.add_option("--sender-cpu", pinning.sender,
                 "pin the sender (and single-process runs) to this CPU");
  app.add_option("--receiver-cpu", pinning.receiver,
                 "pin the receiving process to this CPU");

  CLI11_PARSE(app, argc, argv);
  // The sim logs each resume at info; figures only on stdout.
  spdlog::set_level(spdlog::level::warn);

  if (*tcp) {
    vfiomig::bench::TransportResult r =
        vfiomig::bench::RawTcp(tcp_bytes, pinning);
    Print(Transport(r, "raw_tcp_gib_s"));
  } else if (*baseline) {
    vfiomig::bench::TransportResult r = vfiomig::bench::Baseline(
        config, dest_config,
        sealed ? vfiomig::bench::BaselineFraming::kSealed
               : vfiomig::bench::BaselineFraming::kLengthPrefix,
        pinning);
    Print(Transport(r, sealed ? "sealed_baseline_gib_s" : "baseline_gib_s"));
  } else if (*source) {
    vfiomig::bench::PinTo(pinning.sender);
    vfiomig::bench::DeviceResult r = vfiomig::bench::SimSource(config);
    Print({{"bytes", r.bytes},
           {"seconds", r.seconds},
           {"cpu_seconds", r.cpu_seconds},
           {"wall_gib_s", GiBps(r.bytes, r.seconds)},
           {"sim_source_gib_s", GiBps(r.bytes, r.cpu_seconds)}});
  } else if (*sink) {
    vfiomig::bench::PinTo(pinning.sender);
    vfiomig::bench::DeviceResult r = vfiomig::bench::SimSink(config);
    Print({{"bytes", r.bytes},
           {"seconds", r.seconds},
           {"cpu_seconds", r.cpu_seconds},
           {"wall_gib_s", GiBps(r.bytes, r.seconds)},
           {"sim_sink_gib_s", GiBps(r.bytes, r.cpu_seconds)}});
  } else if (*plan) {
    vfiomig::bench::PlanResult r =
        vfiomig::bench::PlanGroup(devices, iterations);
    Print({{"devices", devices},
           {"iterations", iterations},
           {"waves", r.waves},
           {"plan_us_min", r.min_us},
           {"plan_us", r.median_us}});
  }
  return 0;
}
