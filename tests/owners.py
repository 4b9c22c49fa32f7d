"""A small ownership fixture as NAS features: six parcels, seven Buchungsblätter with
divided property, an Erbbaurecht and a cycle, eight persons. Shared by the ownership, SQL-role
and serving tests."""

import shapely

from pipeline.synthetic.nas_writer import Amount, Ref

B = "2020-01-01T00:00:00Z"


def parcel(i, booking=None):
    props = [("gemarkung", {"AX_Gemarkung_Schluessel": {"land": "05", "gemarkungsnummer": "3096"}}),
             ("flurstuecksnummer", {"AX_Flurstuecksnummer": {"zaehler": str(i)}}),
             ("flurstueckskennzeichen", f"05309600100{i:03d}______"),
             ("amtlicheFlaeche", Amount(100)), ("flurnummer", "1")]
    if booking:
        props.append(("istGebucht", Ref(booking)))
    return {"type": "AX_Flurstueck", "id": f"DENW36AL0000P{i:03d}", "beginnt": B,
            "geom": ("position", shapely.box(350000 + i * 10, 5700000, 350010 + i * 10, 5700010)),
            "props": props}


def stelle(oid, art, sheet, anteil=None, an=()):
    props = [("buchungsart", str(art)), ("laufendeNummer", "1"),
             ("istBestandteilVon", Ref(sheet))]
    if anteil:
        props.append(("anteil", {"AX_Anteil": {"zaehler": anteil[0], "nenner": anteil[1]}}))
    props += [("an", Ref(a)) for a in an]
    return {"type": "AX_Buchungsstelle", "id": oid, "beginnt": B, "props": props}


def sheet(oid, art=1000):
    return {"type": "AX_Buchungsblatt", "id": oid, "beginnt": B,
            "props": [("buchungsblattkennzeichen", f"05{oid[-4:]}"), ("blattart", str(art))]}


def nn(oid, sheet_id, nr, person=None, anteil=None, art=None):
    props = [("laufendeNummerNachDIN1421", nr), ("istBestandteilVon", Ref(sheet_id))]
    if anteil:
        props.append(("anteil", {"AX_Anteil": {"zaehler": anteil[0], "nenner": anteil[1]}}))
    if art:
        props.append(("artDerRechtsgemeinschaft", str(art)))
    if person:
        props.append(("benennt", Ref(person)))
    return {"type": "AX_Namensnummer", "id": oid, "beginnt": B, "props": props}


def person(oid, name, vorname, born="1970-01-01"):
    return {"type": "AX_Person", "id": oid, "beginnt": B,
            "props": [("nachnameOderFirma", name), ("vorname", vorname),
                      ("geburtsdatum", born), ("hat", Ref(oid[:-1] + "A"))]}


def anschrift(oid):
    return {"type": "AX_Anschrift", "id": oid, "beginnt": B,
            "props": [("strasse", "Geheimweg"), ("hausnummer", "7"),
                      ("postleitzahlPostzustellung", "45468"), ("ort_Post", "Mülheim")]}


# Names that occur nowhere else (the shipped Gemarkung catalogue has a "Berg", say).
PEOPLE = {"P1": ("Adlerqx", "Annaqx"), "P2": ("Bergqx", "Bertqx"), "P3": ("Clausqx", "Carlqx"),
          "P4": ("Dornqx", "Doraqx"), "P5": ("Eichqx", "Emilqx"), "P6": ("Finkqx", "Fridaqx"),
          "P7": ("Grafqx", "Gustavqx"), "P8": ("Hahnqx", "Hansqx")}


def pid(k):
    return f"DENW36AL00000{k}P"


def features():
    f = [parcel(1, "DENW36AL00000B01"), parcel(2, "DENW36AL00000B02"),
         parcel(3, "DENW36AL00000B05"), parcel(4), parcel(5, "DENW36AL00000B99"),
         parcel(6, "DENW36AL00000B08")]
    f += [sheet("DENW36AL00000S01"), sheet("DENW36AL00000S02", 5000), sheet("DENW36AL00000S03"),
          sheet("DENW36AL00000S04"), sheet("DENW36AL00000S05"), sheet("DENW36AL00000S06"),
          sheet("DENW36AL00000S07", 5000)]
    f += [stelle("DENW36AL00000B01", 1100, "DENW36AL00000S01"),
          # divided property on a fictive sheet, owned through two Wohnungseigentum bookings
          stelle("DENW36AL00000B02", 1101, "DENW36AL00000S02"),
          stelle("DENW36AL00000B03", 1301, "DENW36AL00000S03", ("3", "10"), ["DENW36AL00000B02"]),
          stelle("DENW36AL00000B04", 1301, "DENW36AL00000S04", ("7.000000000000", "10"),
                 ["DENW36AL00000B02"]),
          # an ordinary parcel with an Erbbaurecht on it
          stelle("DENW36AL00000B05", 1100, "DENW36AL00000S05"),
          stelle("DENW36AL00000B06", 2101, "DENW36AL00000S06", None, ["DENW36AL00000B05"]),
          # a cycle of divided bookings
          stelle("DENW36AL00000B08", 1102, "DENW36AL00000S07", None, ["DENW36AL00000B10"]),
          stelle("DENW36AL00000B10", 1102, "DENW36AL00000S07", None, ["DENW36AL00000B08"])]
    f += [nn("DENW36AL0000N011", "DENW36AL00000S01", "0001.00.00.00.00", None, ("1", "2"), 1000),
          nn("DENW36AL0000N012", "DENW36AL00000S01", "0001.01.00.00.00", pid("P1")),
          nn("DENW36AL0000N013", "DENW36AL00000S01", "0001.02.00.00.00", pid("P2")),
          nn("DENW36AL0000N014", "DENW36AL00000S01", "0002.00.00.00.00", pid("P3"), ("1", "2")),
          nn("DENW36AL0000N031", "DENW36AL00000S03", "0001.00.00.00.00", pid("P4"), ("1", "1")),
          nn("DENW36AL0000N041", "DENW36AL00000S04", "0001.00.00.00.00", pid("P5"), ("1", "2")),
          nn("DENW36AL0000N042", "DENW36AL00000S04", "0002.00.00.00.00", pid("P6"), ("1", "2")),
          nn("DENW36AL0000N051", "DENW36AL00000S05", "0001.00.00.00.00", pid("P7")),
          nn("DENW36AL0000N061", "DENW36AL00000S06", "0001.00.00.00.00", pid("P8"))]
    for k, (name, vorname) in PEOPLE.items():
        f.append(person(pid(k), name, vorname))
        f.append(anschrift(pid(k)[:-1] + "A"))
    return f
