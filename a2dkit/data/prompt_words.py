"""The word lists and templates of the kit's everyday chat prompts (``a2dkit.data.prompt_sets``).

A template's ``{field}`` takes a word of ``WORDS[field]``; ``{field2}`` a different word of the
same list. Changing a list or a template changes the prompts: bump ``PROMPTS_VERSION`` with it.
"""

from __future__ import annotations

__all__ = ["PROMPTS_VERSION", "TEMPLATES", "WORDS"]

PROMPTS_VERSION = 1


def _words(text: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in text.split("|") if w.strip())


WORDS: dict[str, tuple[str, ...]] = {
    "country": _words(
        "France|Japan|Brazil|Canada|Egypt|India|Italy|Spain|Mexico|Kenya|Norway|Peru|Chile|"
        "Germany|Australia|Argentina|Greece|Turkey|Thailand|Vietnam|Nigeria|Sweden|Poland|"
        "Portugal|Ireland|Morocco|Indonesia|China|Russia|Finland|Denmark|Austria|Switzerland|"
        "Colombia|Cuba|Ghana|Ethiopia|Iceland|New Zealand|South Korea|the Netherlands|Belgium|"
        "Hungary|Ukraine|Pakistan|the Philippines|Malaysia|Nepal|Jamaica|Scotland"
    ),
    "animals": _words(
        "cats|dogs|elephants|dolphins|owls|penguins|bees|frogs|lions|tigers|horses|rabbits|"
        "snakes|sharks|whales|eagles|ants|bats|bears|wolves|foxes|giraffes|zebras|camels|"
        "koalas|pandas|octopuses|turtles|parrots|squirrels|deer|goats|cows|chickens|ducks|"
        "crocodiles|butterflies|spiders|hedgehogs|otters|beavers|kangaroos|gorillas|seals"
    ),
    "concept": _words(
        "gravity|photosynthesis|inflation|democracy|electricity|evolution|the water cycle|"
        "a black hole|recycling|machine learning|the immune system|climate change|"
        "supply and demand|a vaccine|an atom|friction|the internet|a volcano|an earthquake|"
        "compound interest|a rainbow|the moon's phases|digestion|a habit|a budget|"
        "renewable energy|the solar system|magnetism|sound waves|a leap year|a cloud|"
        "an ecosystem|a computer program|a password|a library|a calendar|taxes|"
        "a time zone|the ozone layer|a fever|sleep|memory|a muscle|the heart|a seed|"
        "a battery|a map|an election|a museum|a metaphor"
    ),
    "why": _words(
        "the sky blue|the ocean salty|ice slippery|the sun hot|grass green|snow white|"
        "the moon bright at night|exercise good for you|sleep important|water wet|"
        "fire hot|bread soft|a lemon sour|sugar sweet|the desert dry|winter cold|"
        "the wind strong on mountains|a rainbow curved|rust orange|honey sticky|"
        "the Earth round|a baby's skin soft|coffee bitter|glass transparent|"
        "thunder loud|the sea blue|a fridge cold inside|reading good for the brain|"
        "breakfast important|a cactus spiky"
    ),
    "thing": _words(
        "a bicycle|a compass|a refrigerator|a microwave|a thermometer|a lock and key|"
        "a camera|a telescope|a light bulb|a clock|a calculator|a washing machine|"
        "an airplane|a helicopter|a submarine|a train|a car engine|a solar panel|"
        "a wind turbine|a phone|a television|a printer|a keyboard|an elevator|"
        "a parachute|a vacuum cleaner|a kettle|a toaster|a battery|a magnet|a bridge|"
        "a dam|a lighthouse|a boat|a piano|a guitar|a smoke alarm|a traffic light|"
        "a zipper|an umbrella"
    ),
    "word": _words(
        "curious|generous|ancient|brave|gentle|honest|patient|humble|clever|quiet|"
        "fragile|enormous|tiny|rapid|calm|eager|loyal|polite|fierce|bright|gloomy|cheerful|"
        "stubborn|graceful|clumsy|rare|vivid|ordinary|wise|bold|anxious|grateful|lazy|"
        "modern|narrow|shallow|generic|humid|silent|timid|vast|warm|sturdy|swift|"
        "tidy|noisy|famous|simple|strange|friendly"
    ),
    "task": _words(
        "boil an egg|tie a tie|make a cup of tea|plant a tree|change a tire|write a resume|"
        "bake bread|clean a window|make a paper airplane|start a garden|wash a car|"
        "fold a shirt|make pancakes|set up a tent|learn to swim|ride a bicycle|"
        "cook rice|make a smoothie|sew a button|brush my teeth properly|make a sandwich|"
        "water houseplants|study for an exam|pack a suitcase|write a thank-you note|"
        "organize my desk|make a budget|start running|meditate|make coffee|paint a room|"
        "hang a picture|clean my shoes|make a salad|bake cookies|draw a cat|"
        "learn a new language|write a poem|make a snowman|train a puppy"
    ),
    "activity": _words(
        "running|studying|cooking|gardening|swimming|hiking|painting|reading|writing|"
        "traveling|camping|cycling|sleeping well|saving money|learning to code|"
        "public speaking|playing chess|learning guitar|taking photos|yoga|dancing|"
        "fishing|baking|drawing|knitting|playing soccer|working from home|making friends|"
        "staying focused|cleaning the house|learning math|skiing|climbing|journaling|"
        "birdwatching|singing|volunteering|moving to a new city|job interviews|"
        "meeting new people"
    ),
    "topic": _words(
        "the moon|autumn|rain|the ocean|a cat|friendship|winter|the city at night|"
        "a mountain|a river|the stars|a garden|spring|coffee|a train journey|the wind|"
        "a library|a lighthouse|the forest|the sun|summer|snow|a birthday|home|music|"
        "a dog|the sea|a flower|a rainy day|the morning|a bird|a candle|a clock|"
        "a bridge|the desert|a storm|an old tree|a kite|a cup of tea|a lost key"
    ),
    "character": _words(
        "a brave mouse|a lost robot|a curious girl|a lonely dragon|a clever fox|"
        "an old fisherman|a young wizard|a talking tree|a shy elephant|a kind baker|"
        "a tiny astronaut|a sleepy bear|a pirate cat|a friendly ghost|a busy bee|"
        "a magic teapot|a small boat|a wise owl|a funny penguin|a runaway balloon|"
        "a little cloud|a forgetful king|a dancing frog|a grumpy snail|a happy turtle|"
        "a young detective|a farmer and his goat|a sleepy lion|a paper boat|a lost star"
    ),
    "business": _words(
        "bakery|bookstore|coffee shop|flower shop|pet store|bike shop|restaurant|"
        "toy store|gym|yoga studio|tea house|pizza place|ice cream shop|"
        "hair salon|shoe store|music school|art gallery|farm|cleaning service|"
        "photography studio|candle shop|garden center|food truck|dog walking service"
    ),
    "difference": _words(
        "weather and climate|a virus and a bacterium|a lake and a pond|a frog and a toad|"
        "a crocodile and an alligator|speed and velocity|a simile and a metaphor|"
        "a planet and a star|an ocean and a sea|a hill and a mountain|"
        "a noun and a verb|a fruit and a vegetable|a town and a city|a river and a stream|"
        "a cold and the flu|affect and effect|a moth and a butterfly|a rabbit and a hare|"
        "a turtle and a tortoise|a cup and a mug|a jacket and a coat|a debit card and a "
        "credit card|a poem and a song|a college and a university|an island and a peninsula|"
        "tea and coffee|bread and cake|a meteor and a comet|a bay and a gulf|an ape and a monkey"
    ),
    "food": _words(
        "apples|bananas|rice|pasta|potatoes|carrots|oranges|bread|cheese|eggs|milk|"
        "yogurt|spinach|broccoli|tomatoes|beans|chicken|fish|oatmeal|nuts|honey|"
        "chocolate|lentils|avocados|strawberries|grapes|corn|mushrooms|tofu|pears"
    ),
    "listing": _words(
        "fruits that are red|animals that live in the ocean|countries in Africa|"
        "musical instruments|planets in our solar system|sports played with a ball|"
        "colors of the rainbow|vegetables that grow underground|birds that cannot fly|"
        "famous painters|kinds of trees|board games|things to do on a rainy day|"
        "jobs in a hospital|kinds of weather|things found in a kitchen|"
        "animals that live in the desert|kinds of clouds|cities in Europe|"
        "healthy snacks|ways to say hello|kinds of pasta|winter sports|"
        "things you need at the beach|kinds of flowers|farm animals|"
        "languages spoken in Asia|shapes|ways to travel|things that are cold"
    ),
    "goal": _words(
        "sleep better|save money|learn faster|drink more water|be more productive|"
        "remember names|wake up early|eat healthier|stay calm|read more books|"
        "improve my handwriting|make my room tidy|be a better listener|reduce stress|"
        "spend less time on my phone|get fit|write better emails|keep my plants alive|"
        "stop procrastinating|be more confident|learn new words|cook faster|"
        "make my mornings easier|stay warm in winter|keep cool in summer|"
        "improve my memory|feel less tired|be on time|speak more clearly|focus at work"
    ),
    "situation": _words(
        "I feel stressed|my phone is slow|I cannot sleep|I forget my password|"
        "I feel lonely|I am late for work|my plant is dying|I lose my keys|"
        "I spill coffee on my laptop|I have a headache|it starts to rain on a hike|"
        "I get lost in a new city|my friend is upset|I burn my dinner|"
        "my computer freezes|I miss the bus|I feel bored|I get a bad grade|"
        "my dog will not eat|I cannot focus|my shoes are wet|I am nervous before a test|"
        "I break a glass|I see a snake|the power goes out|I have hiccups"
    ),
    "habit": _words(
        "drink coffee every day|sleep eight hours|eat breakfast|walk after dinner|"
        "read before bed|take a nap|drink green tea|stretch in the morning|"
        "eat fruit every day|take cold showers|write a diary|listen to music while working|"
        "work standing up|eat late at night|skip lunch|exercise every day|"
        "drink water before meals|take short breaks|wake up at the same time|"
        "go to bed late|eat spicy food|chew gum"
    ),
    "phrase": _words(
        "good morning|thank you|where is the station|how are you|I love you|"
        "see you tomorrow|what time is it|happy birthday|good night|I am hungry|"
        "the weather is nice|excuse me|how much is this|nice to meet you|I am lost"
    ),
    "language": _words("French|Spanish|German|Italian|Portuguese|Dutch|Japanese|Swedish"),
    "recipient": _words(
        "a friend|my teacher|my neighbor|my grandmother|a coworker|my brother|my boss|"
        "my sister|my coach|a classmate"
    ),
    "event": _words(
        "a birthday|a new job|a graduation|moving house|a wedding|a new baby|retirement|"
        "passing an exam|getting well soon|the holidays|winning a race|a new puppy"
    ),
    "count_fact": _words(
        "days are in a week|minutes are in an hour|months are in a year|legs does a spider "
        "have|continents are there|seconds are in a minute|days are in a leap year|"
        "players are on a soccer team|sides does a hexagon have|hours are in a day|"
        "strings does a violin have|colors are in a rainbow|planets are in the solar system|"
        "bones are in the human body|keys are on a piano|weeks are in a year|"
        "letters are in the English alphabet|hearts does an octopus have|"
        "wheels does a tricycle have|oceans are there on Earth|legs does an insect have|"
        "centimeters are in a meter|grams are in a kilogram|sides does a triangle have|"
        "teeth does an adult human have|days are in June"
    ),
    "number": tuple(str(n) for n in range(2, 41)),
    "small": tuple(str(n) for n in range(2, 13)),
    "items": _words(
        "apples|pencils|books|marbles|cookies|stickers|oranges|balloons|cards|shells|"
        "candies|stamps|toy cars|flowers|coins"
    ),
    "percent": _words("10|20|25|50|75|5|30|40"),
    "amount": tuple(str(n) for n in range(20, 420, 20)),
}

# (category, template): every field must name a list of WORDS (a trailing digit: another word)
TEMPLATES: tuple[tuple[str, str], ...] = (
    ("fact", "What is the capital of {country}?"),
    ("fact", "What language do people speak in {country}?"),
    ("fact", "What is {country} famous for?"),
    ("fact", "What do {animals} eat?"),
    ("fact", "Where do {animals} live?"),
    ("fact", "Tell me a fun fact about {animals}."),
    ("fact", "How many {count_fact}?"),
    ("fact", "Which continent is {country} in?"),
    ("fact", "What is the weather like in {country}?"),
    ("fact", "How long do {animals} live?"),
    ("fact", "Are {animals} good pets?"),
    ("explain", "Explain {concept} in one sentence."),
    ("explain", "Explain {concept} to a child."),
    ("explain", "Why is {why}?"),
    ("explain", "How does {thing} work?"),
    ("explain", "What is {thing} used for?"),
    ("explain", "What are the main parts of {thing}?"),
    ("define", "What is {concept}?"),
    ("define", 'What does the word "{word}" mean?'),
    ("define", 'What is the opposite of "{word}"?'),
    ("define", 'Use the word "{word}" in a sentence.'),
    ("define", 'Give me a synonym for "{word}".'),
    ("define", 'Is "{word}" a positive or a negative word?'),
    ("howto", "How do I {task}?"),
    ("howto", "What are the steps to {task}?"),
    ("howto", "Give me three tips for {activity}."),
    ("howto", "What do I need to get started with {activity}?"),
    ("howto", "What is the easiest way to {task}?"),
    ("howto", "What mistakes do beginners make in {activity}?"),
    ("creative", "Write a short poem about {topic}."),
    ("creative", "Write a haiku about {topic}."),
    ("creative", "Write one sentence describing {topic}."),
    ("creative", "Tell me a short story about {character}."),
    ("creative", "Write a limerick about {topic}."),
    ("creative", "Describe {character} in three sentences."),
    ("creative", "Give me a title for a story about {character}."),
    ("creative", "Suggest a name for my new {business}."),
    ("creative", "Write a slogan for my {business}."),
    ("creative", "Write a short message to {recipient} about {event}."),
    ("compare", "What is the difference between {difference}?"),
    ("compare", "Compare {animals} and {animals2}."),
    ("compare", "Which is healthier, {food} or {food2}?"),
    ("compare", "Which is easier to learn, {activity} or {activity2}?"),
    ("list", "List three {listing}."),
    ("list", "Name five {listing}."),
    ("list", "List three benefits of {activity}."),
    ("list", "What are some easy meals with {food}?"),
    ("list", "List three famous places in {country}."),
    ("list", "What can I cook with {food}?"),
    ("advice", "How can I {goal}?"),
    ("advice", "What should I do if {situation}?"),
    ("advice", "Is it good to {habit}?"),
    ("advice", "What is a good gift for {recipient}?"),
    ("advice", "Give me a one-week plan to {goal}."),
    ("advice", "I want to {goal}. Where should I start?"),
    ("translate", 'How do you say "{phrase}" in {language}?'),
    ("math", "What is {number} plus {number2}?"),
    ("math", "What is {number} minus {number2}?"),
    ("math", "What is {small} times {small2}?"),
    ("math", "If I have {number} {items} and get {number2} more, how many {items} do I have?"),
    ("math", "I have {amount} {items} and give away {number}. How many are left?"),
    ("math", "A car drives {number} kilometers per hour for {small} hours. How far does it go?"),
    ("math", "What is {percent} percent of {amount}?"),
    ("math", "Is {number} an even or an odd number?"),
)
