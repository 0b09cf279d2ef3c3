#include "synthetic_patient.h"

#include <array>
#include <cstdio>
#include <string_view>

namespace hearth::bench {
namespace {

// SplitMix64: tiny, fast and fully specified, so the generated data is identical on every platform
// (std:: distributions are implementation-defined).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); the modulo bias is irrelevant for test data.
  std::uint64_t below(std::uint64_t n) { return next() % n; }
  bool chance(unsigned percent) { return below(100) < percent; }
  template <typename T, std::size_t N>
  const T& pick(const std::array<T, N>& items) { return items[below(N)]; }

 private:
  std::uint64_t state_;
};

constexpr std::array<std::string_view, 40> kFemaleGiven = {
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica",
    "Sarah", "Karen", "Lisa", "Nancy", "Betty", "Margaret", "Sandra", "Ashley",
    "Kimberly", "Emily", "Donna", "Michelle", "Carol", "Amanda", "Melissa", "Deborah",
    "Stephanie", "Rebecca", "Sharon", "Laura", "Cynthia", "Amy", "Angela", "Helen",
    "Anna", "Brenda", "Pamela", "Emma", "Nicole", "Samantha", "Katherine", "Christine"};
constexpr std::array<std::string_view, 40> kMaleGiven = {
    "James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph",
    "Thomas", "Charles", "Christopher", "Daniel", "Matthew", "Anthony", "Mark", "Donald",
    "Steven", "Paul", "Andrew", "Joshua", "Kenneth", "Kevin", "Brian", "George",
    "Timothy", "Ronald", "Edward", "Jason", "Jeffrey", "Ryan", "Jacob", "Gary",
    "Nicholas", "Eric", "Jonathan", "Stephen", "Larry", "Justin", "Scott", "Brandon"};
constexpr std::array<std::string_view, 48> kFamily = {
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas",
    "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
    "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
    "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell"};
constexpr std::array<std::string_view, 24> kStreets = {
    "Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Pine St", "Elm St", "Washington Blvd",
    "Lake Rd", "Hill St", "Park Ave", "Sunset Blvd", "River Rd", "Church St", "Spring St",
    "Highland Ave", "Forest Dr", "Chestnut St", "Walnut St", "Meadow Ln", "Lincoln Way",
    "Jefferson Ave", "Mill Rd", "Union St", "Prospect Pl"};

struct City {
  std::string_view name;
  std::string_view district;
  std::string_view state;
  std::string_view zipPrefix;
};
constexpr std::array<City, 16> kCities = {{
    {"Springfield", "Hampden", "MA", "011"},   {"Worcester", "Worcester", "MA", "016"},
    {"Hartford", "Hartford", "CT", "061"},     {"Albany", "Albany", "NY", "122"},
    {"Madison", "Dane", "WI", "537"},          {"Columbus", "Franklin", "OH", "432"},
    {"Ann Arbor", "Washtenaw", "MI", "481"},   {"Boulder", "Boulder", "CO", "803"},
    {"Eugene", "Lane", "OR", "974"},           {"Asheville", "Buncombe", "NC", "288"},
    {"Savannah", "Chatham", "GA", "314"},      {"Tucson", "Pima", "AZ", "857"},
    {"Fresno", "Fresno", "CA", "937"},         {"Spokane", "Spokane", "WA", "992"},
    {"Des Moines", "Polk", "IA", "503"},       {"Burlington", "Chittenden", "VT", "054"},
}};

struct Coded {
  std::string_view code;
  std::string_view display;
};
// http://terminology.hl7.org/CodeSystem/v3-MaritalStatus
constexpr std::array<Coded, 6> kMarital = {{{"M", "Married"}, {"S", "Never Married"},
                                            {"D", "Divorced"}, {"W", "Widowed"},
                                            {"L", "Legally Separated"}, {"M", "Married"}}};
// urn:ietf:bcp:47 (all in the R4 CommonLanguages value set)
constexpr std::array<Coded, 8> kLanguages = {{{"en-US", "English (United States)"},
                                              {"en-US", "English (United States)"},
                                              {"en-US", "English (United States)"},
                                              {"es", "Spanish"},
                                              {"vi", "Vietnamese"},
                                              {"zh", "Chinese"},
                                              {"fr", "French"},
                                              {"de", "German"}}};
// http://terminology.hl7.org/CodeSystem/v2-0131
constexpr std::array<Coded, 3> kContactRelationship = {
    {{"N", "Next-of-Kin"}, {"C", "Emergency Contact"}, {"E", "Employer"}}};

// All generated text is ASCII without quotes or backslashes; quoting still escapes defensively so the
// output is valid JSON whatever a later edit of the tables puts in.
void appendString(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

void appendField(std::string& out, std::string_view name, std::string_view value) {
  appendString(out, name);
  out.push_back(':');
  appendString(out, value);
}

std::string digits(Rng& rng, int count) {
  std::string s;
  for (int i = 0; i < count; ++i) s.push_back(static_cast<char>('0' + rng.below(10)));
  return s;
}

// North-American fictional range: 555-0100..555-0199 is reserved for fiction.
std::string phone(Rng& rng) {
  static constexpr std::array<std::string_view, 6> kArea = {"413", "508", "617", "860", "518", "614"};
  return "+1 " + std::string(rng.pick(kArea)) + "-555-01" + digits(rng, 2);
}

std::string date(int year, int month, int day) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", year, month, day);
  return buf;
}

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return r;
}

}  // namespace

std::string syntheticPatient(std::uint64_t seed, std::uint64_t index) {
  Rng rng(seed * 0x100000001B3ULL + index * 0x9E3779B97F4A7C15ULL + 1);
  const bool female = rng.chance(51);
  const std::string_view given = female ? rng.pick(kFemaleGiven) : rng.pick(kMaleGiven);
  const std::string_view middle = female ? rng.pick(kFemaleGiven) : rng.pick(kMaleGiven);
  const std::string_view family = rng.pick(kFamily);
  const City& city = rng.pick(kCities);
  const int birthYear = 1930 + static_cast<int>(rng.below(93));
  const int birthMonth = 1 + static_cast<int>(rng.below(12));
  const int birthDay = 1 + static_cast<int>(rng.below(28));
  const Coded& marital = birthYear > 2004 ? kMarital[1] : rng.pick(kMarital);
  const Coded& language = rng.pick(kLanguages);

  std::string out;
  out.reserve(2048);
  out += kPatientPrefix;

  out += "\"extension\":[{\"url\":\"http://hl7.org/fhir/StructureDefinition/patient-birthPlace\","
         "\"valueAddress\":{";
  const City& birthCity = rng.pick(kCities);
  appendField(out, "city", birthCity.name);
  out += ',';
  appendField(out, "state", birthCity.state);
  out += ",\"country\":\"US\"}}],";

  // Medical record number (type MR) plus an insurance member number (type MB).
  char mrn[32];
  std::snprintf(mrn, sizeof mrn, "MRN%08llu",
                static_cast<unsigned long long>((index * 7919 + seed * 104729) % 100000000ULL));
  out += "\"identifier\":[{\"use\":\"usual\",\"type\":{\"coding\":[{\"system\":"
         "\"http://terminology.hl7.org/CodeSystem/v2-0203\",\"code\":\"MR\","
         "\"display\":\"Medical record number\"}],\"text\":\"MRN\"},"
         "\"system\":\"http://hospital.example.org/fhir/sid/mrn\",";
  appendField(out, "value", mrn);
  out += ",\"assigner\":{\"display\":\"Example General Hospital\"}},"
         "{\"use\":\"secondary\",\"type\":{\"coding\":[{\"system\":"
         "\"http://terminology.hl7.org/CodeSystem/v2-0203\",\"code\":\"MB\","
         "\"display\":\"Member Number\"}]},\"system\":\"http://payer.example.org/fhir/sid/member\",";
  appendField(out, "value", "XM" + digits(rng, 9));
  out += "}],";

  out += "\"active\":true,";

  out += "\"name\":[{\"use\":\"official\",";
  appendField(out, "family", family);
  out += ",\"given\":[";
  appendString(out, given);
  out += ',';
  appendString(out, middle);
  out += "],\"prefix\":[";
  appendString(out, female ? (marital.code == "M" ? "Mrs." : "Ms.") : "Mr.");
  out += "]}";
  if (rng.chance(30)) {
    out += ",{\"use\":\"nickname\",\"given\":[";
    appendString(out, given.substr(0, given.size() > 4 ? 4 : given.size()));
    out += "]}";
  }
  out += "],";

  out += "\"telecom\":[{\"system\":\"phone\",";
  appendField(out, "value", phone(rng));
  out += ",\"use\":\"home\",\"rank\":2},{\"system\":\"phone\",";
  appendField(out, "value", phone(rng));
  out += ",\"use\":\"mobile\",\"rank\":1},{\"system\":\"email\",";
  appendField(out, "value", lower(given) + "." + lower(family) + std::to_string(index % 1000) +
                                "@mail.example.org");
  out += ",\"use\":\"home\"}],";

  appendField(out, "gender", female ? "female" : "male");
  out += ',';
  appendField(out, "birthDate", date(birthYear, birthMonth, birthDay));
  out += ",\"deceasedBoolean\":false,";

  out += "\"address\":[{\"use\":\"home\",\"type\":\"both\",\"line\":[";
  appendString(out, std::to_string(1 + rng.below(9899)) + " " + std::string(rng.pick(kStreets)));
  if (rng.chance(35)) {
    out += ',';
    appendString(out, "Apt " + std::to_string(1 + rng.below(40)));
  }
  out += "],";
  appendField(out, "city", city.name);
  out += ',';
  appendField(out, "district", city.district);
  out += ',';
  appendField(out, "state", city.state);
  out += ',';
  appendField(out, "postalCode", std::string(city.zipPrefix) + digits(rng, 2));
  out += ",\"country\":\"US\",\"period\":{";
  appendField(out, "start", date(1995 + static_cast<int>(rng.below(28)),
                                 1 + static_cast<int>(rng.below(12)),
                                 1 + static_cast<int>(rng.below(28))));
  out += "}}],";

  out += "\"maritalStatus\":{\"coding\":[{\"system\":"
         "\"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus\",";
  appendField(out, "code", marital.code);
  out += ',';
  appendField(out, "display", marital.display);
  out += "}],";
  appendField(out, "text", marital.display);
  out += "},";

  out += "\"multipleBirthBoolean\":false,";

  const Coded& relationship = rng.pick(kContactRelationship);
  const bool contactFemale = rng.chance(50);
  out += "\"contact\":[{\"relationship\":[{\"coding\":[{\"system\":"
         "\"http://terminology.hl7.org/CodeSystem/v2-0131\",";
  appendField(out, "code", relationship.code);
  out += ',';
  appendField(out, "display", relationship.display);
  out += "}]}],\"name\":{\"use\":\"official\",";
  appendField(out, "family", rng.chance(60) ? family : rng.pick(kFamily));
  out += ",\"given\":[";
  appendString(out, contactFemale ? rng.pick(kFemaleGiven) : rng.pick(kMaleGiven));
  out += "]},\"telecom\":[{\"system\":\"phone\",";
  appendField(out, "value", phone(rng));
  out += "}],";
  appendField(out, "gender", contactFemale ? "female" : "male");
  out += "}],";

  out += "\"communication\":[{\"language\":{\"coding\":[{\"system\":\"urn:ietf:bcp:47\",";
  appendField(out, "code", language.code);
  out += ',';
  appendField(out, "display", language.display);
  out += "}]},\"preferred\":true}]";

  out += '}';
  return out;
}

}  // namespace hearth::bench
