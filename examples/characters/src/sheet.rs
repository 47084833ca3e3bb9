//! Character sheets generated deterministically from a request: the same name, class, race and
//! seed always give the same stats and backstory.

use serde::{Deserialize, Serialize};

use crate::util::{fnv1a, Rng};

/// The classes a character can have, with their primary ability and hit die.
pub const CLASSES: &[(&str, Ability, u32)] = &[
    ("fighter", Ability::Str, 10),
    ("wizard", Ability::Int, 6),
    ("rogue", Ability::Dex, 8),
    ("cleric", Ability::Wis, 8),
    ("ranger", Ability::Dex, 10),
    ("bard", Ability::Cha, 8),
    ("paladin", Ability::Str, 10),
    ("druid", Ability::Wis, 8),
];

/// The races a character can have.
pub const RACES: &[&str] = &[
    "human", "elf", "dwarf", "halfling", "orc", "gnome", "tiefling",
];

/// The six abilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ability {
    /// Strength.
    Str,
    /// Dexterity.
    Dex,
    /// Constitution.
    Con,
    /// Intelligence.
    Int,
    /// Wisdom.
    Wis,
    /// Charisma.
    Cha,
}

const ABILITY_ORDER: [Ability; 6] = [
    Ability::Str,
    Ability::Dex,
    Ability::Con,
    Ability::Int,
    Ability::Wis,
    Ability::Cha,
];

/// A request to create a character (`POST /api/v1/characters/jobs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CharacterRequest {
    /// The character's name (1 to 40 characters).
    pub name: String,
    /// One of [`CLASSES`]; derived from the name when absent.
    #[serde(default)]
    pub class: Option<String>,
    /// One of [`RACES`]; derived from the name when absent.
    #[serde(default)]
    pub race: Option<String>,
    /// Extra seed, to reroll the same name.
    #[serde(default)]
    pub seed: Option<u64>,
}

impl CharacterRequest {
    /// Checks the request; the error says what is wrong, for a 400 answer.
    pub fn validate(&self) -> Result<(), String> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err("`name` must not be empty".into());
        }
        if name.chars().count() > 40 {
            return Err("`name` must be at most 40 characters".into());
        }
        if name.chars().any(char::is_control) {
            return Err("`name` must not contain control characters".into());
        }
        if let Some(c) = &self.class {
            if !CLASSES.iter().any(|(n, _, _)| n.eq_ignore_ascii_case(c)) {
                let names: Vec<&str> = CLASSES.iter().map(|c| c.0).collect();
                return Err(format!(
                    "unknown `class` {c:?}: expected one of {}",
                    names.join(", ")
                ));
            }
        }
        if let Some(r) = &self.race {
            if !RACES.iter().any(|n| n.eq_ignore_ascii_case(r)) {
                return Err(format!(
                    "unknown `race` {r:?}: expected one of {}",
                    RACES.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The seed every derived value comes from.
    pub fn hash(&self) -> u64 {
        let name = self.name.trim().to_lowercase();
        let class = self.class.as_deref().unwrap_or("").to_lowercase();
        let race = self.race.as_deref().unwrap_or("").to_lowercase();
        let seed = self.seed.unwrap_or(0).to_le_bytes();
        fnv1a(&[name.as_bytes(), class.as_bytes(), race.as_bytes(), &seed])
    }
}

/// Ability scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Strength.
    pub strength: u32,
    /// Dexterity.
    pub dexterity: u32,
    /// Constitution.
    pub constitution: u32,
    /// Intelligence.
    pub intelligence: u32,
    /// Wisdom.
    pub wisdom: u32,
    /// Charisma.
    pub charisma: u32,
}

impl Stats {
    fn get(&self, a: Ability) -> u32 {
        match a {
            Ability::Str => self.strength,
            Ability::Dex => self.dexterity,
            Ability::Con => self.constitution,
            Ability::Int => self.intelligence,
            Ability::Wis => self.wisdom,
            Ability::Cha => self.charisma,
        }
    }
}

/// The ability modifier of a score: `floor((score - 10) / 2)`.
pub fn modifier(score: u32) -> i32 {
    (i32::try_from(score).unwrap_or(10) - 10).div_euclid(2)
}

/// A generated character sheet.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sheet {
    /// The name as given (trimmed).
    pub name: String,
    /// The class.
    pub class: String,
    /// The race.
    pub race: String,
    /// Always 1 for a new character.
    pub level: u32,
    /// Ability scores (4d6, lowest die dropped; the best roll goes to the class's primary).
    pub stats: Stats,
    /// Hit points at level 1: the class's hit die plus the Constitution modifier.
    pub hit_points: i32,
    /// Armor class: 10 + Dexterity modifier + the class's armor.
    pub armor_class: i32,
    /// A few sentences assembled from templates.
    pub backstory: String,
    /// The seed the sheet and portrait derive from (hex).
    pub seed: String,
}

/// Rolls the ability scores: six times 4d6 keeping the best three, sorted, the highest placed
/// on `primary`, Constitution second, the rest in rolled order.
pub fn roll_stats(rng: &mut Rng, primary: Ability) -> Stats {
    let mut rolls: Vec<u32> = (0..6)
        .map(|_| {
            let mut d: Vec<u32> = (0..4).map(|_| rng.below(6) + 1).collect();
            d.sort_unstable();
            d[1..].iter().sum()
        })
        .collect();
    rolls.sort_unstable();
    rolls.reverse();
    let mut order: Vec<Ability> = vec![primary];
    if primary != Ability::Con {
        order.push(Ability::Con);
    }
    let rest: Vec<Ability> = ABILITY_ORDER
        .iter()
        .filter(|a| !order.contains(a))
        .copied()
        .collect();
    order.extend(rest);
    let mut s = Stats {
        strength: 0,
        dexterity: 0,
        constitution: 0,
        intelligence: 0,
        wisdom: 0,
        charisma: 0,
    };
    for (ability, score) in order.into_iter().zip(rolls) {
        match ability {
            Ability::Str => s.strength = score,
            Ability::Dex => s.dexterity = score,
            Ability::Con => s.constitution = score,
            Ability::Int => s.intelligence = score,
            Ability::Wis => s.wisdom = score,
            Ability::Cha => s.charisma = score,
        }
    }
    s
}

const ORIGINS: &[(&str, &[&str])] = &[
    (
        "human",
        &[
            "a river town where the ferries never stop",
            "a border fort that changed banners twice in one winter",
            "a family of candle makers in the capital",
        ],
    ),
    (
        "elf",
        &[
            "a moonlit forest that remembers every footstep",
            "an elven archive carved into a living tree",
            "a wandering clan of star-readers",
        ],
    ),
    (
        "dwarf",
        &[
            "a mountain hold famous for its bell foundries",
            "the deepest mine in the Iron Reaches",
            "a guild of runesmiths sworn to secrecy",
        ],
    ),
    (
        "halfling",
        &[
            "a hillside village of round doors and long lunches",
            "a riverboat that carried spices and rumours",
            "an orchard that fed three provinces",
        ],
    ),
    (
        "orc",
        &[
            "a nomad tribe that follows the thunderstorms",
            "a fortress of black stone in the steppe",
            "a mercenary camp that prized honour above coin",
        ],
    ),
    (
        "gnome",
        &[
            "a workshop where nothing ever stopped ticking",
            "a burrow full of maps to places that do not exist",
            "a family of illusionists who performed for kings",
        ],
    ),
    (
        "tiefling",
        &[
            "a city that never trusted them",
            "a travelling circus that took in every outcast",
            "a temple library where they were found as an infant",
        ],
    ),
];

const EVENTS: &[&str] = &[
    "lost everything in a fire that was no accident",
    "found a sealed letter addressed to them, dated a hundred years ago",
    "survived a shipwreck as the only one who could not swim",
    "was framed for the theft of a relic they had never seen",
    "witnessed a comet split in two above the old watchtower",
    "won a wager against a dragon and has been hunted since",
    "was the last to leave a village swallowed by fog",
    "inherited a map with one region deliberately burned away",
];

const MOTIVES: &[(&str, &str)] = &[
    (
        "fighter",
        "trains every dawn so that no one under their protection falls again",
    ),
    (
        "wizard",
        "seeks the spell that was torn from their master's grimoire",
    ),
    (
        "rogue",
        "keeps a list of debts owed and means to collect every one",
    ),
    (
        "cleric",
        "follows visions that grow clearer the farther they travel",
    ),
    (
        "ranger",
        "tracks the creature that drove their people from the wild",
    ),
    (
        "bard",
        "collects the songs no one else remembers, before they vanish",
    ),
    (
        "paladin",
        "swore an oath at a ruined shrine and will not rest until it is rebuilt",
    ),
    (
        "druid",
        "listens for the sickness spreading beneath the roots of the world",
    ),
];

const QUIRKS: &[&str] = &[
    "They hum off-key when nervous.",
    "They never sit with their back to a door.",
    "They name every horse they ride, even for a single day.",
    "They collect buttons from every town they pass through.",
    "They refuse to eat anything that was cooked by candlelight.",
    "They talk to their weapon as if it could answer.",
    "They keep a diary written entirely in riddles.",
    "They cannot resist correcting a bard's lyrics.",
];

/// Generates the sheet for a valid `req` (see [`CharacterRequest::validate`]).
pub fn generate(req: &CharacterRequest) -> Sheet {
    let seed = req.hash();
    let mut rng = Rng::new(seed);
    let (class, primary, hit_die) = match &req.class {
        Some(c) => *CLASSES
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(c))
            .unwrap_or(&CLASSES[0]),
        None => *rng.pick(CLASSES),
    };
    let race = match &req.race {
        Some(r) => RACES
            .iter()
            .find(|n| n.eq_ignore_ascii_case(r))
            .copied()
            .unwrap_or(RACES[0]),
        None => *rng.pick(RACES),
    };
    let stats = roll_stats(&mut rng, primary);
    let con = modifier(stats.get(Ability::Con));
    let dex = modifier(stats.get(Ability::Dex));
    let armor = match class {
        "fighter" | "paladin" => 6,
        "cleric" | "ranger" => 4,
        "rogue" | "bard" | "druid" => 1,
        _ => 0,
    };
    let name = req.name.trim().to_owned();
    let origins = ORIGINS
        .iter()
        .find(|(r, _)| *r == race)
        .map_or(ORIGINS[0].1, |(_, o)| *o);
    let origin = rng.pick(origins);
    let event = rng.pick(EVENTS);
    let motive = MOTIVES
        .iter()
        .find(|(c, _)| *c == class)
        .map_or(MOTIVES[0].1, |(_, m)| *m);
    let quirk = rng.pick(QUIRKS);
    let backstory = format!(
        "{name} grew up in {origin}. As a young {race}, {name} {event}. Now a {class}, {name} {motive}. {quirk}"
    );
    Sheet {
        name,
        class: class.to_owned(),
        race: race.to_owned(),
        level: 1,
        stats,
        hit_points: (i32::try_from(hit_die).unwrap_or(8) + con).max(1),
        armor_class: 10 + dex + armor,
        backstory,
        seed: format!("{seed:016x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str) -> CharacterRequest {
        CharacterRequest {
            name: name.into(),
            class: None,
            race: None,
            seed: None,
        }
    }

    #[test]
    fn deterministic_and_valid() {
        let a = generate(&req("Aria"));
        let b = generate(&req("  aria "));
        assert_eq!(a.stats, b.stats);
        assert_eq!(a.backstory.replace("Aria", "aria"), b.backstory);
        for s in [a.stats.strength, a.stats.dexterity, a.stats.charisma] {
            assert!((3..=18).contains(&s));
        }
        let w = generate(&CharacterRequest {
            class: Some("Wizard".into()),
            ..req("Mx")
        });
        assert_eq!(w.class, "wizard");
        let best = [
            w.stats.strength,
            w.stats.dexterity,
            w.stats.constitution,
            w.stats.intelligence,
            w.stats.wisdom,
            w.stats.charisma,
        ]
        .into_iter()
        .max();
        assert_eq!(Some(w.stats.intelligence), best);
    }

    #[test]
    fn validation() {
        assert!(req("").validate().is_err());
        assert!(req(&"x".repeat(41)).validate().is_err());
        let bad = CharacterRequest {
            class: Some("astronaut".into()),
            ..req("a")
        };
        assert!(bad.validate().unwrap_err().contains("astronaut"));
        assert_eq!(modifier(8), -1);
        assert_eq!(modifier(15), 2);
    }
}
