#!/usr/bin/env python3
"""Synthetic hospital data for Hearth's search and import benchmarks, as FHIR R4 transaction Bundles.

usage: bench/gen_hospital.py --patients N [--seed S] [--out DIR | --out -] [--sidecar FILE]
                             [--bundle-size B] [--heavy K] [--heavy-resources R]
                             [--shared-refs id|conditional] [--samples M] [--split-dir DIR]

What it writes
  * One transaction Bundle of the shared resources (Organizations, Practitioners), always first:
    PUT with stable ids (s<seed>-org-<k>, s<seed>-prac-<k>), so every later Bundle can reference
    them. The loader sends it alone before the rest.
  * Transaction Bundles of patients with everything that belongs to them: Patient, Encounters,
    vital-sign and laboratory Observations, DiagnosticReports pointing at their lab results,
    Appointments, MedicationRequests and Invoices. Every entry is a POST with a urn:uuid: fullUrl,
    and references between a patient's resources use those urn:uuids, so the server assigns every
    id. A patient never spans two Bundles (urn:uuid references only resolve within one), so
    Bundles hold whole patients: about --bundle-size entries each (default 500).
  * About 100 resources per patient on average (--patients 10000 gives ~1M), plus --heavy patients
    (default 1) with about --heavy-resources (default 500) each, for Patient/$everything.
  * A sidecar JSON (--sidecar; default DIR/queries.json) of values for query benchmarks: sample
    patients (urn:uuid, MRN, family, observation code/date pairs that match), heavy patients,
    families, counts. Server ids are unknown until loading: bench/load.py records them.

--out DIR writes DIR/bundle-000000.json (shared), bundle-000001.json ...; --out - writes one Bundle
per line (NDJSON) on stdout, for piping into bench/load.py --in - (the sidecar is written before
stdout is closed). The output is byte-for-byte the same for the same arguments (--seed, default 1).
Python 3 standard library only. All names, identifiers, addresses and phone numbers are invented.
"""
import argparse
import datetime as dt
import json
import os
import random
import sys
import uuid

# --- systems -------------------------------------------------------------------------------------
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CPT = "http://www.ama-assn.org/go/cpt"
NPI = "http://hl7.org/fhir/sid/us-npi"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
V2_0276 = "http://terminology.hl7.org/CodeSystem/v2-0276"
V3_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
INTERP = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
# The hospital's own identifier systems (example.org: invented, resolvable to nothing).
MRN_SYSTEM = "http://hospital.example.org/fhir/sid/mrn"
ORG_ID_SYSTEM = "http://hospital.example.org/fhir/sid/org"
INVOICE_SYSTEM = "http://hospital.example.org/fhir/sid/invoice"

TZ = dt.timezone(dt.timedelta(hours=1))
# Clinical history is spread over these ten years (fixed: the output must not depend on today).
HISTORY_START = dt.datetime(2015, 1, 1, tzinfo=TZ)
HISTORY_END = dt.datetime(2024, 12, 31, tzinfo=TZ)

# --- people --------------------------------------------------------------------------------------
FAMILIES = [
    # English / Irish / Scottish
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor",
    "Anderson", "Thomas", "Moore", "Jackson", "White", "Harris", "Clark", "Lewis", "Walker",
    "Hall", "Young", "King", "Wright", "Hill", "Green", "Baker", "Campbell", "Mitchell", "Murphy",
    "O'Brien", "O'Connor", "McDonald", "MacLeod", "Kelly", "Fitzgerald", "Gallagher",
    # Spanish / Portuguese
    "García", "Rodríguez", "Martínez", "Hernández", "López", "González", "Pérez", "Sánchez",
    "Ramírez", "Torres", "Flores", "Rivera", "Gómez", "Díaz", "Núñez", "Peña", "Muñoz", "Ibáñez",
    "Gonçalves", "Conceição", "Magalhães", "Araújo", "Simões", "Brandão",
    # French
    "Dubois", "Lefèvre", "Lefebvre", "Girard", "Faure", "Rousseau", "Mercier", "Bézier", "Chénier",
    "Benoît", "Lemaître", "Côté", "Gagné", "Bélanger",
    # German / Dutch / Nordic
    "Müller", "Schäfer", "Schröder", "Köhler", "Weiß", "Groß", "Krüger", "Jäger", "Böhm", "Fischer",
    "Wagner", "Becker", "Hoffmann", "van der Berg", "de Vries", "Jansen", "Bakker", "Nielsen",
    "Søndergaard", "Jørgensen", "Ångström", "Åberg", "Lindqvist", "Järvinen", "Mäkinen",
    # Italian / Polish / Czech / Hungarian
    "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Nicolò",
    "Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kamiński", "Lewandowski", "Dvořák", "Novák",
    "Svoboda", "Horváth", "Szabó", "Tóth",
    # Turkish / Greek / Arabic / Persian (transliterated)
    "Yılmaz", "Öztürk", "Çelik", "Şahin", "Doğan", "Papadopoulos", "Georgiou", "Haddad", "Khoury",
    "Al-Masri", "Nasser", "Farahani", "Hosseini",
    # South and East Asian (transliterated)
    "Nguyễn", "Trần", "Lê", "Phạm", "Đặng", "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang",
    "Kim", "Park", "Choi", "Tanaka", "Suzuki", "Satō", "Watanabe", "Patel", "Sharma", "Singh",
    "Gupta", "Reddy", "Iyer",
    # African
    "Okafor", "Adeyemi", "Mensah", "Owusu", "Kamau", "Mwangi", "Diallo", "Ndiaye", "Dlamini",
]
FEMALE_GIVEN = [
    "Mary", "Emma", "Olivia", "Sophie", "Chloé", "Zoë", "Léa", "Anaïs", "Renée", "Hélène",
    "María", "Lucía", "Inés", "Sofía", "Begoña", "Conceição", "Ana", "Joana", "Giulia", "Chiara",
    "Anna", "Dörte", "Lena", "Jördis", "Ingrid", "Åsa", "Björk", "Maja", "Zofia", "Małgorzata",
    "Agnieszka", "Kateřina", "Zsófia", "Ayşe", "Elif", "Fatma", "Layla", "Fatima", "Mei", "Xiu",
    "Yuki", "Hana", "Ji-woo", "Priya", "Ananya", "Aaliyah", "Chiamaka", "Amara", "Thảo", "Linh",
    "Siobhán", "Aoife", "Niamh", "Jennifer", "Elizabeth", "Sarah", "Karen", "Laura", "Helen",
]
MALE_GIVEN = [
    "James", "John", "Michael", "David", "William", "Thomas", "Daniel", "Matthew", "Andrew",
    "José", "Jesús", "Andrés", "Ramón", "Joaquín", "João", "Sebastião", "François", "Jérôme",
    "Benoît", "Noël", "Loïc", "Jürgen", "Jörg", "Günther", "Björn", "Søren", "Ørjan", "Lars",
    "Łukasz", "Paweł", "Wojciech", "Jiří", "Tomáš", "Gábor", "Mehmet", "Çağlar", "Oğuz", "Ahmed",
    "Omar", "Yusuf", "Wei", "Hao", "Hiroshi", "Kenji", "Min-jun", "Arjun", "Rahul", "Vikram",
    "Chukwuemeka", "Kwame", "Oluwaseun", "Dũng", "Minh", "Seán", "Pádraig", "Niccolò", "Luca",
    "Marco", "Robert", "Richard", "Joseph",
]
CITIES = [  # city, state/region, postal code prefix, country
    ("Springfield", "MA", "011", "US"), ("Worcester", "MA", "016", "US"),
    ("Hartford", "CT", "061", "US"), ("Albany", "NY", "122", "US"),
    ("Madison", "WI", "537", "US"), ("Ann Arbor", "MI", "481", "US"),
    ("Tucson", "AZ", "857", "US"), ("San José", "CA", "951", "US"),
    ("Montréal", "QC", "H2X", "CA"), ("Québec", "QC", "G1R", "CA"),
    ("München", "BY", "803", "DE"), ("Köln", "NW", "506", "DE"),
    ("Zürich", "ZH", "800", "CH"), ("Genève", "GE", "120", "CH"),
    ("Malmö", "M", "211", "SE"), ("Århus", "82", "800", "DK"),
    ("Kraków", "MA", "300", "PL"), ("Łódź", "LD", "900", "PL"),
    ("Bogotá", "DC", "110", "CO"), ("São Paulo", "SP", "010", "BR"),
    ("Córdoba", "X", "500", "AR"), ("İzmir", "35", "350", "TR"),
]
STREETS = [
    "Main Street", "Oak Avenue", "Maple Drive", "Cedar Lane", "Hauptstraße", "Bahnhofstraße",
    "Rue de la Paix", "Rue Saint-Honoré", "Calle Mayor", "Avenida Paulista", "Rua Augusta",
    "Kungsgatan", "Ulica Długa", "Via Roma", "Strøget", "Atatürk Caddesi", "Église Road",
    "Chemin des Épinettes", "Königsallee", "Park Avenue",
]

# --- clinical content ----------------------------------------------------------------------------
# LOINC vital signs: code, display, UCUM unit, mean, spread, decimals.
VITALS = [
    ("8867-4", "Heart rate", "/min", 75, 12, 0),
    ("9279-1", "Respiratory rate", "/min", 16, 3, 0),
    ("8310-5", "Body temperature", "Cel", 36.9, 0.5, 1),
    ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 97, 1.5, 0),
    ("29463-7", "Body weight", "kg", 76, 16, 1),
    ("8302-2", "Body height", "cm", 170, 10, 1),
    ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 26, 4, 1),
]
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
BP_SYSTOLIC = ("8480-6", "Systolic blood pressure", 125, 15)
BP_DIASTOLIC = ("8462-4", "Diastolic blood pressure", 80, 10)
# Laboratory panels: report code, display, CPT charge code, [(code, display, unit, mean, spread,
# decimals, low, high)].
LAB_PANELS = [
    ("58410-2", "CBC panel - Blood by Automated count", "85025", [
        ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 7.5, 2.0, 1, 4.5, 11.0),
        ("789-8", "Erythrocytes [#/volume] in Blood by Automated count", "10*6/uL", 4.8, 0.5, 2, 4.2, 5.9),
        ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 14.0, 1.5, 1, 12.0, 17.5),
        ("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "%", 42, 4, 1, 36, 50),
        ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 250, 60, 0, 150, 400),
    ]),
    ("51990-0", "Basic metabolic panel - Blood", "80048", [
        ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 100, 20, 0, 70, 99),
        ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 1.0, 0.25, 2, 0.6, 1.3),
        ("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL", 14, 4, 0, 7, 20),
        ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 140, 3, 0, 135, 145),
        ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 4.2, 0.4, 1, 3.5, 5.1),
        ("2075-0", "Chloride [Moles/volume] in Serum or Plasma", "mmol/L", 102, 3, 0, 98, 107),
    ]),
    ("57698-3", "Lipid panel with direct LDL - Serum or Plasma", "80061", [
        ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 195, 35, 0, 0, 200),
        ("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", 140, 50, 0, 0, 150),
        ("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", 52, 12, 0, 40, 200),
        ("18262-6", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay", "mg/dL", 115, 30, 0, 0, 130),
    ]),
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "83036", [
        ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 5.9, 0.9, 1, 4.0, 5.6),
    ]),
]
SMOKING = ("72166-2", "Tobacco smoking status",
           [("266919005", "Never smoked tobacco"), ("8517006", "Ex-smoker"), ("77176002", "Smoker")])
ENCOUNTER_KINDS = [  # class code, class display, SNOMED type, type display, CPT visit code, weight
    ("AMB", "ambulatory", "185349003", "Encounter for check up", "99213", 55),
    ("AMB", "ambulatory", "185345009", "Encounter for symptom", "99214", 25),
    ("EMER", "emergency", "50849002", "Emergency room admission", "99283", 12),
    ("IMP", "inpatient encounter", "32485007", "Hospital admission", "99223", 8),
]
REASONS = [
    ("38341003", "Hypertensive disorder"), ("44054006", "Diabetes mellitus type 2"),
    ("55822004", "Hyperlipidemia"), ("195662009", "Acute viral pharyngitis"),
    ("10509002", "Acute bronchitis"), ("36971009", "Sinusitis"), ("195967001", "Asthma"),
    ("68566005", "Urinary tract infectious disease"), ("271737000", "Anemia"),
    ("25064002", "Headache"), ("161891005", "Backache"), ("22298006", "Myocardial infarction"),
]
MEDICATIONS = [  # RxNorm code, display, dosage text
    ("314076", "lisinopril 10 MG Oral Tablet", "1 tablet daily"),
    ("197361", "amlodipine 5 MG Oral Tablet", "1 tablet daily"),
    ("861007", "metformin hydrochloride 500 MG Oral Tablet", "1 tablet twice daily with meals"),
    ("198211", "simvastatin 40 MG Oral Tablet", "1 tablet at night"),
    ("310798", "hydrochlorothiazide 25 MG Oral Tablet", "1 tablet in the morning"),
    ("313782", "acetaminophen 325 MG Oral Tablet", "2 tablets every 6 hours as needed"),
    ("310965", "ibuprofen 200 MG Oral Tablet", "1-2 tablets every 8 hours as needed"),
    ("308182", "amoxicillin 250 MG Oral Capsule", "1 capsule three times daily for 7 days"),
    ("745679", "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler", "2 puffs as needed"),
    ("966247", "levothyroxine sodium 0.075 MG Oral Tablet", "1 tablet before breakfast"),
    ("1049621", "oxycodone hydrochloride 5 MG Oral Tablet", "1 tablet every 6 hours as needed"),
]
SPECIALTIES = [
    ("419772000", "Family practice"), ("394579002", "Cardiology"), ("394583002", "Endocrinology"),
    ("394582007", "Dermatology"), ("419192003", "Internal medicine"), ("394814009", "General practice"),
]
APPOINTMENT_TYPES = [("ROUTINE", "Routine appointment"), ("FOLLOWUP", "A follow up visit"),
                     ("CHECKUP", "A routine check-up"), ("WALKIN", "A previously unscheduled walk-in visit")]
ORG_NAMES = ["General Hospital", "Saint Mary's Hospital", "Clinique Sainte-Thérèse",
             "Klinikum Süd", "Hospital Universitário", "Children's Medical Center",
             "Riverside Family Practice", "Centre Hospitalier Régional", "Policlínica San José",
             "Lakeside Laboratory Services"]


def gauss(rng, mean, spread, decimals, lo=None):
    v = rng.gauss(mean, spread)
    if lo is not None and v < lo:
        v = lo + abs(rng.gauss(0, spread / 4))
    v = round(v, decimals)
    return int(v) if decimals == 0 else v


def when(t):
    """FHIR dateTime/instant text, with seconds and the +01:00 offset."""
    return t.isoformat(timespec="seconds")


def money(value, currency):
    return {"value": round(value, 2), "currency": currency}


def coding(system, code, display=None):
    c = {"system": system, "code": code}
    if display:
        c["display"] = display
    return c


def concept(system, code, display=None, text=None):
    cc = {"coding": [coding(system, code, display)]}
    if text or display:
        cc["text"] = text or display
    return cc


class Generator:
    def __init__(self, seed, patients, heavy, heavy_resources, shared_refs, samples):
        self.seed = seed
        self.patients = patients
        self.heavy_resources = heavy_resources
        self.shared_refs = shared_refs
        rng = random.Random(f"hearth-bench:{seed}:shared")
        self.n_orgs = max(3, min(100, patients // 1000))
        self.n_pracs = max(10, min(2000, patients // 50))
        self.orgs = [self._organization(rng, k) for k in range(self.n_orgs)]
        self.pracs = [self._practitioner(rng, k) for k in range(self.n_pracs)]
        # Heavy patients sit at evenly spread positions; samples every `stride` patients.
        self.heavy = {(2 * j + 1) * patients // (2 * heavy) for j in range(heavy)} if heavy else set()
        self.stride = max(1, patients // max(1, samples))
        self.counts = {}
        self.sample_patients = []
        self.heavy_patients = []

    # -- shared resources ------------------------------------------------------------------------
    def _organization(self, rng, k):
        city, state, zip3, country = CITIES[k % len(CITIES)]
        name = ORG_NAMES[k % len(ORG_NAMES)] + ("" if k < len(ORG_NAMES) else f" {city}")
        return {
            "resourceType": "Organization",
            "id": f"s{self.seed}-org-{k}",
            "identifier": [{"system": ORG_ID_SYSTEM, "value": f"ORG-{self.seed}-{k:04d}"}],
            "active": True,
            "type": [concept(ORG_TYPE, "prov", "Healthcare Provider")],
            "name": name,
            "telecom": [{"system": "phone", "value": f"+1-555-01{k % 100:02d}", "use": "work"}],
            "address": [{"use": "work", "line": [f"{100 + k} {rng.choice(STREETS)}"], "city": city,
                         "state": state, "postalCode": f"{zip3}{k % 100:02d}", "country": country}],
        }

    def _practitioner(self, rng, k):
        female = rng.random() < 0.5
        spec = rng.choice(SPECIALTIES)
        return {
            "resourceType": "Practitioner",
            "id": f"s{self.seed}-prac-{k}",
            # NPI-shaped (10 digits) but invented: 9 + seed-derived block + index.
            "identifier": [{"system": NPI, "value": f"9{self.seed % 1000:03d}{k:06d}"}],
            "active": True,
            "name": [{"use": "official", "family": rng.choice(FAMILIES),
                      "given": [rng.choice(FEMALE_GIVEN if female else MALE_GIVEN)], "prefix": ["Dr."]}],
            "telecom": [{"system": "email", "value": f"practitioner{k}@hospital.example.org", "use": "work"}],
            "gender": "female" if female else "male",
            "qualification": [{"code": concept(SNOMED, spec[0], spec[1])}],
        }

    def _shared_ref(self, resource):
        if self.shared_refs == "conditional":
            ident = resource["identifier"][0]
            return {"reference": f"{resource['resourceType']}?identifier={ident['system']}|{ident['value']}"}
        return {"reference": f"{resource['resourceType']}/{resource['id']}"}

    def shared_bundle(self):
        entries = []
        for r in self.orgs + self.pracs:
            entries.append({"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}})
            self._count(r["resourceType"])
        return {"resourceType": "Bundle", "type": "transaction", "entry": entries}

    def _count(self, rtype):
        self.counts[rtype] = self.counts.get(rtype, 0) + 1

    # -- one patient -----------------------------------------------------------------------------
    def patient_entries(self, i):
        """The entries of patient i (Patient first; every referenced resource before its referrers)."""
        rng = random.Random(f"hearth-bench:{self.seed}:patient:{i}")
        heavy = i in self.heavy
        entries = []

        def add(resource):
            full = f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
            entries.append({"fullUrl": full, "resource": resource,
                            "request": {"method": "POST", "url": resource["resourceType"]}})
            self._count(resource["resourceType"])
            return {"reference": full}

        female = rng.random() < 0.51
        gender = "female" if female else "male"
        if rng.random() < 0.01:
            gender = rng.choice(["other", "unknown"])
        family = rng.choice(FAMILIES)
        if rng.random() < 0.12:  # double-barrelled: raises the number of distinct families
            family = f"{family}-{rng.choice(FAMILIES)}"
        given = [rng.choice(FEMALE_GIVEN if female else MALE_GIVEN)]
        if rng.random() < 0.35:
            given.append(rng.choice(FEMALE_GIVEN if female else MALE_GIVEN))
        birth = dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 93))
        city, state, zip3, country = rng.choice(CITIES)
        mrn = f"{self.seed % 1000:03d}{i:08d}"
        org = rng.choice(self.orgs)
        gp = rng.choice(self.pracs)
        patient = {
            "resourceType": "Patient",
            "identifier": [{"use": "usual", "type": concept(V2_0203, "MR", "Medical record number"),
                            "system": MRN_SYSTEM, "value": mrn}],
            "active": True,
            "name": [{"use": "official", "family": family, "given": given}],
            "telecom": [{"system": "phone", "value": f"+1-555-{rng.randrange(100, 200):03d}-{rng.randrange(10000):04d}",
                         "use": rng.choice(["home", "mobile"])}],
            "gender": gender,
            "birthDate": birth.isoformat(),
            "address": [{"use": "home", "type": "physical",
                         "line": [f"{rng.randrange(1, 400)} {rng.choice(STREETS)}"],
                         "city": city, "state": state,
                         "postalCode": f"{zip3}{rng.randrange(100):02d}", "country": country}],
            "generalPractitioner": [self._shared_ref(gp)],
            "managingOrganization": self._shared_ref(org),
        }
        if rng.random() < 0.4:
            patient["telecom"].append({"system": "email", "value": f"patient{i}@mail.example.org", "use": "home"})
        pref = add(patient)

        start = max(HISTORY_START, dt.datetime(birth.year, birth.month, birth.day, tzinfo=TZ))
        span = (HISTORY_END - start).total_seconds()
        # ~8 encounters at ~12 resources each make ~100 per patient (see the mix below). A heavy
        # patient has visits at random times until it reaches its resource count.
        def visit_times():
            if heavy:
                while len(entries) < self.heavy_resources:
                    yield start + dt.timedelta(seconds=rng.random() * span)
            else:
                n_enc = rng.choice([4, 5, 6, 7, 7, 8, 8, 8, 9, 9, 10, 11, 12])
                yield from sorted(start + dt.timedelta(seconds=rng.random() * span) for _ in range(n_enc))
        obs_samples = []
        has_report = False
        smoking = rng.choice(SMOKING[2])
        height = gauss(rng, 170 if not female else 163, 8, 1, 120)
        for k, t in enumerate(visit_times()):
            t = t.replace(minute=rng.choice([0, 15, 30, 45]), second=0, microsecond=0)
            t = t.replace(hour=rng.randrange(7, 18))
            kind = rng.choices(ENCOUNTER_KINDS, weights=[e[5] for e in ENCOUNTER_KINDS])[0]
            prac = rng.choice(self.pracs)
            reason = rng.choice(REASONS)
            hours = {"AMB": 0.5, "EMER": 4, "IMP": 72}[kind[0]]
            end = t + dt.timedelta(hours=hours * (0.5 + rng.random()))

            # The appointment that led to the visit (most ambulatory ones were booked).
            if kind[0] == "AMB" and rng.random() < 0.85:
                atype = rng.choice(APPOINTMENT_TYPES)
                add({
                    "resourceType": "Appointment",
                    "status": "fulfilled",
                    "appointmentType": concept(V2_0276, atype[0], atype[1]),
                    "reasonCode": [concept(SNOMED, reason[0], reason[1])],
                    "description": atype[1],
                    "start": when(t),
                    "end": when(t + dt.timedelta(minutes=30)),
                    "minutesDuration": 30,
                    "created": when(t - dt.timedelta(days=rng.randrange(1, 60))),
                    "participant": [
                        {"actor": pref, "required": "required", "status": "accepted"},
                        {"actor": self._shared_ref(prac), "required": "required", "status": "accepted"},
                    ],
                })
            enc = add({
                "resourceType": "Encounter",
                "status": "finished",
                "class": coding(V3_ACT, kind[0], kind[1]),
                "type": [concept(SNOMED, kind[2], kind[3])],
                "subject": pref,
                "participant": [{"individual": self._shared_ref(prac)}],
                "period": {"start": when(t), "end": when(end)},
                "reasonCode": [concept(SNOMED, reason[0], reason[1])],
                "serviceProvider": self._shared_ref(org),
            })

            def observation(code, display, category, effective, **value):
                o = {
                    "resourceType": "Observation",
                    "status": "final",
                    "category": [concept(OBS_CATEGORY, category,
                                         {"vital-signs": "Vital Signs", "laboratory": "Laboratory",
                                          "social-history": "Social History"}[category])],
                    "code": concept(LOINC, code, display),
                    "subject": pref,
                    "encounter": enc,
                    "effectiveDateTime": when(effective),
                    "issued": when(effective + dt.timedelta(minutes=rng.randrange(5, 240))),
                    "performer": [self._shared_ref(prac)],
                }
                o.update(value)
                ref = add(o)
                if len(obs_samples) < 64:
                    obs_samples.append((code, effective.date().isoformat()))
                return ref

            # Vital signs: blood pressure (components) and a rotating set of the others.
            observation(BP_PANEL[0], BP_PANEL[1], "vital-signs", t, component=[
                {"code": concept(LOINC, c[0], c[1]),
                 "valueQuantity": {"value": gauss(rng, c[2], c[3], 0, 40), "unit": "mm[Hg]",
                                   "system": UCUM, "code": "mm[Hg]"}}
                for c in (BP_SYSTOLIC, BP_DIASTOLIC)])
            for code, display, unit, mean, spread, dec in rng.sample(VITALS, 5):
                value = height if code == "8302-2" else gauss(rng, mean, spread, dec, mean / 3)
                observation(code, display, "vital-signs", t,
                            valueQuantity={"value": value, "unit": unit, "system": UCUM, "code": unit})
            if k == 0 or rng.random() < 0.1:
                observation(SMOKING[0], SMOKING[1], "social-history", t,
                            valueCodeableConcept=concept(SNOMED, smoking[0], smoking[1]))

            # Laboratory: about half the visits order a panel, reported with a DiagnosticReport.
            charges = [(kind[4], kind[3], {"AMB": 110, "EMER": 450, "IMP": 2400}[kind[0]])]
            if rng.random() < 0.5:
                code, display, cpt, tests = rng.choices(LAB_PANELS, weights=[4, 4, 2, 1])[0]
                drawn = t + dt.timedelta(minutes=rng.randrange(10, 60))
                results = []
                for tc, td, unit, mean, spread, dec, low, high in tests:
                    value = gauss(rng, mean, spread, dec, mean / 4)
                    interp = "H" if value > high else ("L" if value < low else "N")
                    results.append(observation(
                        tc, td, "laboratory", drawn,
                        valueQuantity={"value": value, "unit": unit, "system": UCUM, "code": unit},
                        interpretation=[concept(INTERP, interp, {"H": "High", "L": "Low", "N": "Normal"}[interp])],
                        referenceRange=[{"low": {"value": low, "unit": unit, "system": UCUM, "code": unit},
                                         "high": {"value": high, "unit": unit, "system": UCUM, "code": unit}}]))
                add({
                    "resourceType": "DiagnosticReport",
                    "status": "final",
                    "category": [concept(V2_0074, "LAB", "Laboratory")],
                    "code": concept(LOINC, code, display),
                    "subject": pref,
                    "encounter": enc,
                    "effectiveDateTime": when(drawn),
                    "issued": when(drawn + dt.timedelta(hours=rng.randrange(2, 30))),
                    "performer": [self._shared_ref(org)],
                    "result": results,
                })
                has_report = True
                charges.append((cpt, display, {"85025": 28, "80048": 36, "80061": 42, "83036": 31}[cpt]))

            if rng.random() < 0.7:
                med = rng.choice(MEDICATIONS)
                add({
                    "resourceType": "MedicationRequest",
                    "status": "completed" if end < HISTORY_END - dt.timedelta(days=180) else "active",
                    "intent": "order",
                    "medicationCodeableConcept": concept(RXNORM, med[0], med[1]),
                    "subject": pref,
                    "encounter": enc,
                    "authoredOn": when(end),
                    "requester": self._shared_ref(prac),
                    "reasonCode": [concept(SNOMED, reason[0], reason[1])],
                    "dosageInstruction": [{"sequence": 1, "text": med[2]}],
                    "dispenseRequest": {"numberOfRepeatsAllowed": rng.randrange(0, 4),
                                        "quantity": {"value": 30, "unit": "tablet"}},
                })
            if rng.random() < 0.6:
                currency = "USD" if country in ("US", "CA") else "EUR"
                net = sum(c[2] for c in charges) * (0.8 + rng.random() * 0.4)
                add({
                    "resourceType": "Invoice",
                    "identifier": [{"system": INVOICE_SYSTEM, "value": f"INV-{mrn}-{k:03d}"}],
                    "status": "balanced" if end < HISTORY_END - dt.timedelta(days=90) else "issued",
                    "subject": pref,
                    "recipient": pref,
                    "date": when(end + dt.timedelta(days=rng.randrange(1, 20))),
                    "issuer": self._shared_ref(org),
                    "lineItem": [{"sequence": n + 1,
                                  "chargeItemCodeableConcept": concept(CPT, c[0], c[1]),
                                  "priceComponent": [{"type": "base", "amount": money(c[2], currency)}]}
                                 for n, c in enumerate(charges)],
                    "totalNet": money(net, currency),
                    "totalGross": money(net * 1.08, currency),
                    "paymentTerms": "Payable within 30 days.",
                })

        info = {"uuid": pref["reference"][len("urn:uuid:"):], "identifier": f"{MRN_SYSTEM}|{mrn}",
                "family": family, "given": given[0], "birthDate": patient["birthDate"],
                "resources": len(entries), "has_report": has_report}
        if heavy:
            self.heavy_patients.append(info)
        elif i % self.stride == 0:
            # A few observation codes with dates this patient has: date=ge<that day> matches it.
            picks = rng.sample(obs_samples, min(4, len(obs_samples)))
            info["observations"] = [{"code": f"{LOINC}|{c}", "date": d} for c, d in picks]
            self.sample_patients.append(info)
        return entries

    # -- bundles ---------------------------------------------------------------------------------
    def patient_bundles(self, bundle_size):
        """Transaction Bundles of whole patients, each about bundle_size entries (at least one patient)."""
        batch = []
        for i in range(self.patients):
            entries = self.patient_entries(i)
            if batch and len(batch) + len(entries) > bundle_size:
                yield {"resourceType": "Bundle", "type": "transaction", "entry": batch}
                batch = []
            batch.extend(entries)
        if batch:
            yield {"resourceType": "Bundle", "type": "transaction", "entry": batch}

    def sidecar(self, bundles, entries):
        families = sorted({p["family"] for p in self.sample_patients + self.heavy_patients})
        return {
            "generator": "bench/gen_hospital.py",
            "seed": self.seed,
            "patients": self.patients,
            "bundles": bundles,
            "resources": entries,
            "counts": dict(sorted(self.counts.items())),
            "mrn_system": MRN_SYSTEM,
            "shared_refs": self.shared_refs,
            "note": "server ids are assigned at load time: bench/load.py maps each uuid to its id",
            "families": families,
            "heavy_patients": self.heavy_patients,
            "sample_patients": self.sample_patients,
        }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, required=True, help="number of ordinary patients (~100 resources each)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True, help="directory for bundle-NNNNNN.json files, or - for NDJSON on stdout")
    ap.add_argument("--sidecar", help="query values file (default DIR/queries.json; required with --out -)")
    ap.add_argument("--bundle-size", type=int, default=500, help="about this many entries per Bundle (default 500)")
    ap.add_argument("--heavy", type=int, default=1, help="patients with about --heavy-resources resources (default 1)")
    ap.add_argument("--heavy-resources", type=int, default=500)
    ap.add_argument("--shared-refs", choices=["id", "conditional"], default="id",
                    help="reference Practitioners/Organizations as Type/id (default) or Type?identifier=sys|val")
    ap.add_argument("--samples", type=int, default=1000, help="sample patients recorded in the sidecar (default 1000)")
    ap.add_argument("--pretty", action="store_true", help="indented JSON (files only; for reading, not loading)")
    ap.add_argument("--split-dir", help="also write every resource of the first bundles as one file each "
                    "(for tests/schema/validate.mjs), at most --split-max files")
    ap.add_argument("--split-max", type=int, default=2000)
    a = ap.parse_args(argv)
    if a.patients < 0 or a.bundle_size < 1 or a.heavy < 0 or a.heavy > max(1, a.patients) or a.heavy_resources < 20:
        ap.error("need --patients >= 0, --bundle-size >= 1, 0 <= --heavy <= --patients, --heavy-resources >= 20")
    if a.heavy and a.patients == 0:
        a.heavy = 0
    stream = a.out == "-"
    if stream and not a.sidecar:
        ap.error("--out - needs --sidecar FILE")
    sidecar_path = a.sidecar or os.path.join(a.out, "queries.json")
    if not stream:
        os.makedirs(a.out, exist_ok=True)

    gen = Generator(a.seed, a.patients, a.heavy, a.heavy_resources, a.shared_refs, a.samples)
    out = sys.stdout.buffer if stream else None
    split_written = 0
    n_bundles = n_entries = 0

    def emit(bundle):
        nonlocal n_bundles, n_entries, split_written
        if stream:
            out.write(json.dumps(bundle, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
            out.write(b"\n")
        else:
            path = os.path.join(a.out, f"bundle-{n_bundles:06d}.json")
            # json.dumps, not json.dump: only dumps uses the C encoder.
            text = (json.dumps(bundle, ensure_ascii=False, indent=1) if a.pretty
                    else json.dumps(bundle, ensure_ascii=False, separators=(",", ":")))
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        if a.split_dir and split_written < a.split_max:
            os.makedirs(a.split_dir, exist_ok=True)
            for e in bundle["entry"]:
                if split_written >= a.split_max:
                    break
                r = e["resource"]
                with open(os.path.join(a.split_dir, f"{split_written:06d}-{r['resourceType']}.json"), "w",
                          encoding="utf-8") as f:
                    f.write(json.dumps(r, ensure_ascii=False))
                split_written += 1
        n_bundles += 1
        n_entries += len(bundle["entry"])

    emit(gen.shared_bundle())
    for b in gen.patient_bundles(a.bundle_size):
        emit(b)
    with open(sidecar_path, "w", encoding="utf-8") as f:
        json.dump(gen.sidecar(n_bundles, n_entries), f, ensure_ascii=False, indent=1)
    if stream:
        out.flush()
    print(f"gen_hospital: {n_entries} resources in {n_bundles} bundles "
          f"({a.patients} patients, {len(gen.heavy_patients)} heavy); sidecar {sidecar_path}", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:  # the consumer stopped reading (e.g. the loader failed): not our error
        sys.stderr.close()
        sys.exit(1)
