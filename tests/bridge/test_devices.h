// Device records for the simulator's five device types, as the Zigbee network reports them after an
// interview: shared by the pure-builder tests and the in-memory network of the bridge tests.
#pragma once

#include <string>

#include "mqtt/bridge/network_view.h"

namespace edged::test {

inline mqtt::bridge::CoordinatorInfo TestCoordinator() {
  mqtt::bridge::CoordinatorInfo c;
  c.ieee_address = "0x00124b00deadbeef";
  c.type = "zStack3x0";
  c.revision = "20240710";
  c.channel = 11;
  c.pan_id = 0x1A62;
  c.extended_pan_id = "0xdddddddddddddddd";
  return c;
}

// type: climate_sensor, smart_plug, color_bulb, motion_sensor, door_contact.
inline mqtt::bridge::DeviceInfo SimDevice(const std::string& type, const std::string& ieee, const std::string& name) {
  mqtt::bridge::DeviceInfo d;
  d.ieee_address = ieee;
  d.network_address = 0x1234;
  d.friendly_name = name;
  d.manufacturer = "edged";
  d.software_build_id = "1.0.0";
  d.date_code = "20250101";
  d.interview_state = mqtt::bridge::InterviewState::kSuccessful;
  mqtt::bridge::EndpointInfo ep;
  ep.id = 1;
  ep.input_clusters = {"genBasic", "genIdentify"};
  if (type == "climate_sensor") {
    d.model_id = "edged.climate";
    d.type = "EndDevice";
    d.power_source = "Battery";
    for (auto c : {"genPowerCfg", "msTemperatureMeasurement", "msRelativeHumidity", "msPressureMeasurement"}) {
      ep.input_clusters.push_back(c);
    }
  } else if (type == "smart_plug") {
    d.model_id = "edged.plug";
    d.type = "Router";
    d.power_source = "Mains (single phase)";
    for (auto c : {"genOnOff", "seMetering", "haElectricalMeasurement"}) ep.input_clusters.push_back(c);
  } else if (type == "color_bulb") {
    d.model_id = "edged.bulb";
    d.type = "Router";
    d.power_source = "Mains (single phase)";
    for (auto c : {"genOnOff", "genLevelCtrl", "lightingColorCtrl"}) ep.input_clusters.push_back(c);
  } else if (type == "motion_sensor") {
    d.model_id = "edged.motion";
    d.type = "EndDevice";
    d.power_source = "Battery";
    for (auto c : {"genPowerCfg", "msOccupancySensing", "msIlluminanceMeasurement"}) ep.input_clusters.push_back(c);
  } else if (type == "door_contact") {
    d.model_id = "edged.door";
    d.type = "EndDevice";
    d.power_source = "Battery";
    for (auto c : {"genPowerCfg", "ssIasZone"}) ep.input_clusters.push_back(c);
  }
  ep.output_clusters = {"genOta"};
  d.endpoints = {ep};
  return d;
}

}  // namespace edged::test
