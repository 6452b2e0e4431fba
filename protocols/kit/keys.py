"""Attribute keys, Traccar's names (`Position.KEY_*`): whatever a decoder cannot put
in a normalized column goes into `Record.attributes` under one of these (or a
numbered family: `io<N>`, `in<N>`, `out<N>`, `adc<N>`, `temp<N>`, `fuel<N>`, `count<N>`)."""

from __future__ import annotations

ORIGINAL = "raw"
INDEX = "index"
HDOP = "hdop"
VDOP = "vdop"
PDOP = "pdop"
SATELLITES_VISIBLE = "satVisible"
RSSI = "rssi"
GPS = "gps"
ROAMING = "roaming"
EVENT = "event"
ALARM = "alarm"
STATUS = "status"
ODOMETER_SERVICE = "serviceOdometer"
ODOMETER_TRIP = "tripOdometer"
HOURS = "hours"
STEPS = "steps"
HEART_RATE = "heartRate"
INPUT = "input"
OUTPUT = "output"
IMAGE = "image"
VIDEO = "video"
AUDIO = "audio"
FUEL = "fuel"
FUEL_LEVEL = "fuelLevel"
FUEL_USED = "fuelUsed"
FUEL_CONSUMPTION = "fuelConsumption"
VERSION_FW = "versionFw"
VERSION_HW = "versionHw"
TYPE = "type"
FLAGS = "flags"
ANTENNA = "antenna"
CHARGE = "charge"
IP = "ip"
DISTANCE = "distance"
TOTAL_DISTANCE = "totalDistance"
RPM = "rpm"
VIN = "vin"
APPROXIMATE = "approximate"
THROTTLE = "throttle"
MOTION = "motion"
ARMED = "armed"
GEOFENCE = "geofence"
ACCELERATION = "acceleration"
HUMIDITY = "humidity"
DEVICE_TEMP = "deviceTemp"
COOLANT_TEMP = "coolantTemp"
ENGINE_LOAD = "engineLoad"
ENGINE_TEMP = "engineTemp"
OPERATOR = "operator"
COMMAND = "command"
BLOCKED = "blocked"
LOCK = "lock"
DOOR = "door"
AXLE_WEIGHT = "axleWeight"
G_SENSOR = "gSensor"
ICCID = "iccid"
PHONE = "phone"
SPEED_LIMIT = "speedLimit"
DRIVING_TIME = "drivingTime"
DTCS = "dtcs"
OBD_SPEED = "obdSpeed"
OBD_ODOMETER = "obdOdometer"
RESULT = "result"
DRIVER_UNIQUE_ID = "driverUniqueId"
CARD = "card"
DEVICE_TIME = "deviceTime"
MCC = "mcc"
MNC = "mnc"
LAC = "lac"
CELL_ID = "cid"


def numbered(prefix: str, n: int) -> str:
    """`io12`, `adc1`, `temp2` ... (Traccar's PREFIX_* families)."""
    return f"{prefix}{n}"


#: Traccar keys that are normalized `Record` fields here, not attributes
RECORD_FIELDS: dict[str, str] = {
    "sat": "satellites",
    "batteryLevel": "battery_level",
    "battery": "battery",
    "power": "power",
    "ignition": "ignition",
    "odometer": "odometer",
    "alarm": "alarms",
    "archive": "archive",
    "speed": "speed",
    "course": "course",
    "altitude": "altitude",
    "valid": "valid",
}
