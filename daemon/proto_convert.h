// Conversions between core/backend types and the vfiomig.v1 wire types.
//
// The only place that knows both representations, so that the core stays
// free of protobuf and the services stay free of mapping details. The
// kernel's state values 1..7 travel unchanged; the kernel's ERROR (0) is
// DEVICE_STATE_ERROR (8) on the wire, because proto3 reserves 0 for
// "unset".
#ifndef VFIOMIG_DAEMON_PROTO_CONVERT_H_
#define VFIOMIG_DAEMON_PROTO_CONVERT_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "daemon/core/fsm.h"
#include "daemon/core/planner.h"
#include "daemon/inventory.h"
#include "grpcpp/support/status.h"
#include "vfiomig/v1/control.pb.h"

namespace vfiomig {

v1::DeviceState DeviceStateToProto(DeviceState state);
// InvalidArgument for DEVICE_STATE_UNSPECIFIED and unknown values.
absl::StatusOr<DeviceState> DeviceStateFromProto(v1::DeviceState state);

// One entry per known flag, in flag order; unknown bits are dropped here
// (they still show in Device.migration_flags).
void MigrationFeaturesToProto(MigrationFeatures features,
                              google::protobuf::RepeatedField<int>* out);
// InvalidArgument for UNSPECIFIED and unknown values.
absl::StatusOr<MigrationFeatures> MigrationFeaturesFromProto(
    const google::protobuf::RepeatedField<int>& features);

void DeviceSnapshotToProto(const DeviceSnapshot& snapshot, v1::Device* out);
void HostDeviceToProto(const HostDevice& device, v1::HostDevice* out);

PlanOptions PlanOptionsFromProto(const v1::PlanOptions& options);
void WaveToProto(const Wave& wave, v1::Wave* out);
void GroupPlanToProto(const GroupPlan& plan, v1::MigrationPlan* out);

// absl and gRPC share the canonical status codes, so the code carries over
// unchanged; the message is kept as is.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_PROTO_CONVERT_H_
