// Calibration of the KV-cache transports (models/net/transport.h) against measured point-to-point transfers.
//
// Input: a transport profile, a CSV file with the header
//     transport,bytes,time_us,mode,source
// (lines starting with '#' and blank lines are ignored). transport: a registry key (nvlink, gpudirect_rdma, ...);
// bytes: the size of one transfer (a number, or with a unit: "1MiB"), >= 1; time_us: its time in microseconds,
// > 0; mode: `single` (empty = single) - one transfer alone, start to completion (nixlbench's per-iteration time
// with one transfer in flight, ucx_perftest's latency tests) - or `stream` - the time per transfer when transfers
// of that size follow each other back to back, without the per-transfer setup (ucx_perftest's bandwidth tests,
// nixlbench with several transfers in flight); source: free text, may contain commas. `servesim ingest
// ucx_perftest` and `servesim ingest nixlbench` write such files (models/hw/transport_ingest.h). A malformed row
// throws InputError "file:line: ...".
//
// Fit, per transport (weighted least squares, weights 1 / time^2, i.e. relative errors): a single row's time is
// setup + n x per_message + bytes / rate, a stream row's n x per_message + bytes / rate, with n = ceil(bytes /
// message_size) at the transport's default message size. The three terms are fitted when the rows determine them
// and the fit gives setup >= 0, per_message >= 0, rate > 0; otherwise, in this order, (setup, rate) with the
// default per_message, (per_message, rate) with the default setup, then rate alone with both defaults - the first
// that the rows determine with those signs. (Rows of one transfer per size, all at most one message, cannot tell
// setup from per_message: the default per_message is kept and setup takes the rest.) A transport needs rows at two
// or more sizes; rows that no such fit matches throw InputError naming the file and transport.
//
// Use: a calibrated transport's paths take the fitted setup and per_message (the pipeline fill of host-staged
// transports is inside the measured setup, so it is not added again) and the fitted rate, capped at the raw
// bandwidth of the narrowest link of the route (a profile measured elsewhere cannot make a link faster than it is).
// select_transport() applies it: for `servesim transfer --profile` and for a disaggregated run's KV transfers
// ([cluster.kv_transfer] profile) alike.
#pragma once
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "models/common/units.h"
#include "models/net/transport.h"

namespace servesim {

inline constexpr const char* kTransportCsvHeader = "transport,bytes,time_us,mode,source";

struct TransportMeasurement {
  std::string transport;
  Bytes bytes{0};
  Seconds time{0};
  bool stream = false;  // mode: false = single, true = stream
  std::string source;
  std::string where;  // "file:line"
};

[[nodiscard]] std::vector<TransportMeasurement> read_transport_csv(const std::string& path);

struct TransportFit {
  std::string transport;
  Seconds setup{0};
  Seconds per_message{0};
  Bytes message_size{0};
  BytesPerSec rate{0};
  std::string fitted;         // the terms the rows determined: "setup, per_message, rate", "setup, rate", ...
  std::size_t rows = 0;
  double max_error_pct = 0.0;  // largest |fitted - measured| / measured over the rows, in percent
  std::string source;         // the profile's path
  // The fitted time of `bytes` in `stream` or single mode.
  [[nodiscard]] Seconds time(Bytes bytes, bool stream) const;
};

// Fits one transport's rows (all of the same transport) starting from `defaults`. `name` names the input in
// messages (the file). Throws InputError as described above.
[[nodiscard]] TransportFit fit_transport(const std::vector<TransportMeasurement>& rows, const TransportCosts& defaults,
                                         const std::string& name);

class TransportCalibration {
 public:
  TransportCalibration() = default;
  // One fit per transport measured (each starting from that transport's default_costs()). Throws InputError for
  // an unknown transport name (naming the row, listing the valid ones) and as fit_transport().
  [[nodiscard]] static TransportCalibration fit(const std::vector<TransportMeasurement>& rows,
                                                const std::string& name);
  // read_transport_csv() + fit().
  [[nodiscard]] static TransportCalibration from_csv(const std::string& path);

  [[nodiscard]] const std::map<std::string, TransportFit>& fits() const { return fits_; }
  [[nodiscard]] const TransportFit* find(const std::string& transport) const;
  // Replaces the cost terms of `path` with its transport's fit, if any (see "Use" above). `topo`: the path's.
  void apply(const Topology& topo, TransportPath& path) const;

 private:
  std::map<std::string, TransportFit> fits_;
};

}  // namespace servesim
